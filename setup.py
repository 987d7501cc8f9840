# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""ament_python package setup: installs both Python packages, launch/ and config/."""

from glob import glob

from setuptools import setup

PACKAGE = 'coinfer'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=['coinfer_device', 'coinfer_edge'],
    package_data={'coinfer_device': ['assets/*.pt', 'assets/*.json'],
                  'coinfer_edge': ['assets/*.pt', 'assets/*.json']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='coinfer maintainers',
    maintainer_email='maintainers@users.noreply.example',
    description='Adaptive device-edge co-inference with a discrete Soft Actor-Critic split policy',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            # ROS nodes (ros2 run coinfer <name>)
            'camera_node = coinfer_device.camera_node:main',
            'device_node = coinfer_device.device_node:main',
            'cpu_monitor = coinfer_device.cpu_monitor:main',
            'edge_node = coinfer_edge.edge_node:main',
            'link_monitor = coinfer_edge.link_monitor:main',
            'policy_node = coinfer_edge.policy_node:main',
            # tools
            'coinfer-train-model = coinfer_device.train_model:main',
            'coinfer-evaluate-model = coinfer_device.evaluate_model:main',
            'coinfer-profile = coinfer_device.profiler:main',
            'coinfer-train-policy = coinfer_edge.train_policy:main',
            'coinfer-evaluate-policy = coinfer_edge.evaluate_policy:main',
            'coinfer-demo = coinfer_edge.demo:main',
        ],
    },
)
