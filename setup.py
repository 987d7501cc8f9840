# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""ament_python package setup: installs both Python packages, launch/ and config/."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'coinfer'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=['coinfer_device', 'coinfer_device.*', 'coinfer_edge', 'coinfer_edge.*']),
    package_data={'coinfer_device': ['assets/*.pt', 'assets/*.json'],
                  'coinfer_edge': ['assets/*.safetensors', 'assets/*.json']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + PACKAGE + '/config/sros2', glob('config/sros2/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='coinfer maintainers',
    maintainer_email='maintainers@users.noreply.example',
    description='Adaptive device-edge co-inference with a discrete Soft Actor-Critic split policy',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            # ROS nodes (ros2 run coinfer <name>); the light entry module makes Ctrl-C quiet during imports
            'camera_node = coinfer_device.ros.entry_points:camera_node',
            'device_node = coinfer_device.ros.entry_points:device_node',
            'cpu_monitor = coinfer_device.ros.entry_points:cpu_monitor',
            'edge_node = coinfer_edge.nodes.entry_points:edge_node',
            'link_monitor = coinfer_device.ros.entry_points:link_monitor',
            'policy_node = coinfer_edge.nodes.entry_points:policy_node',
            'coinfer-record = coinfer_device.ros.entry_points:recorder',
            # tools
            'coinfer-train-model = coinfer_device.tools.train_model:main',
            'coinfer-evaluate-model = coinfer_device.tools.evaluate_model:main',
            'coinfer-profile = coinfer_device.tools.profiler:main',
            'coinfer-train-policy = coinfer_edge.tools.train_policy:main',
            'coinfer-evaluate-policy = coinfer_edge.tools.evaluate_policy:main',
            'coinfer-bag-extract = coinfer_edge.tools.bag_extract:main',
            'coinfer-update-policy = coinfer_edge.tools.update_policy:main',
            'coinfer-demo = coinfer_edge.demo.cli:main',
            'coinfer-experiment = coinfer_edge.demo.experiment:main',
            'coinfer-experiment-report = coinfer_edge.demo.results:main',
        ],
    },
)
