# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Everything on one machine: robot.launch.py and workstation.launch.py in one namespace.

``ros2 launch coinfer coinfer.launch.py`` replays Fashion-MNIST with the SAC-d policy;
``ros2 launch coinfer coinfer.launch.py emulated_link:=true policy:=rule`` adds the emulated
slow link and uses the exhaustive-search rule.  Discovery stays on this host
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) unless ``discovery_range:=SUBNET`` (docs/security.md).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Return the all-in-one launch description."""
    share = FindPackageShare('coinfer')
    namespace = LaunchConfiguration('namespace')
    model_path = LaunchConfiguration('model_path')
    policy = LaunchConfiguration('policy')
    policy_path = LaunchConfiguration('policy_path')
    profile_path = LaunchConfiguration('profile_path')
    emulated_link = LaunchConfiguration('emulated_link')
    camera_params_file = LaunchConfiguration('camera_params_file')
    device_params_file = LaunchConfiguration('device_params_file')
    link_monitor_params_file = LaunchConfiguration('link_monitor_params_file')
    edge_params_file = LaunchConfiguration('edge_params_file')
    policy_params_file = LaunchConfiguration('policy_params_file')
    log_level = LaunchConfiguration('log_level')
    autostart = LaunchConfiguration('autostart')
    discovery_range = LaunchConfiguration('discovery_range')

    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of every node'),
        DeclareLaunchArgument('model_path', default_value='', description="Model checkpoint ('' = shipped)"),
        DeclareLaunchArgument('policy', default_value='sacd', description="'sacd' or 'rule'"),
        DeclareLaunchArgument('policy_path', default_value='', description="Trained policy ('' = shipped)"),
        DeclareLaunchArgument('profile_path', default_value='', description="Machine profile ('' = shipped)"),
        DeclareLaunchArgument('emulated_link', default_value='false',
                              description='Delay features through the in-process link emulator'),
        DeclareLaunchArgument('camera_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'camera.yaml']),
                              description='Parameters of camera_node'),
        DeclareLaunchArgument('device_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'device.yaml']),
                              description='Parameters of device_node and cpu_monitor'),
        DeclareLaunchArgument('link_monitor_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'link_monitor.yaml']),
                              description='Parameters of link_monitor'),
        DeclareLaunchArgument('edge_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'edge.yaml']),
                              description='Parameters of edge_node and edge_cpu_monitor'),
        DeclareLaunchArgument('policy_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'policy.yaml']),
                              description='Parameters of policy_node'),
        DeclareLaunchArgument('log_level', default_value='info', description='Log level of every node'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='The lifecycle nodes (device, edge, policy) configure and activate '
                                          'themselves (false: they wait for `ros2 lifecycle set`)'),
        DeclareLaunchArgument('discovery_range', default_value='LOCALHOST',
                              description='ROS_AUTOMATIC_DISCOVERY_RANGE of every node: LOCALHOST (nothing leaves '
                                          "this host), SUBNET (Jazzy's default), OFF or SYSTEM_DEFAULT"),
        SetEnvironmentVariable('ROS_AUTOMATIC_DISCOVERY_RANGE', discovery_range),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch', 'robot.launch.py'])),
            launch_arguments={'namespace': namespace, 'model_path': model_path, 'emulated_link': emulated_link,
                              'camera_params_file': camera_params_file, 'device_params_file': device_params_file,
                              'link_monitor_params_file': link_monitor_params_file,
                              'log_level': log_level, 'autostart': autostart}.items()),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch', 'workstation.launch.py'])),
            launch_arguments={'namespace': namespace, 'model_path': model_path, 'policy': policy,
                              'policy_path': policy_path, 'profile_path': profile_path,
                              'edge_params_file': edge_params_file, 'policy_params_file': policy_params_file,
                              'log_level': log_level, 'autostart': autostart}.items()),
    ])
