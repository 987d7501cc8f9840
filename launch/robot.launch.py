# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Robot side: camera (replay) node, device node, robot CPU monitor and link monitor.

The link monitor runs here, not on the workstation: it measures round trips on the device's
monotonic clock (docs/topics.md, "Latency across the link").

``ros2 launch coinfer robot.launch.py namespace:=robot1``; with ``use_camera:=false`` another
camera driver publishes ``image_raw``.  The device node is a lifecycle node that configures and
activates itself (``autostart``); with ``autostart:=false`` it waits for ``ros2 lifecycle set``.
The camera and device nodes are critical (their exit ends the launch), the monitors are
respawned (docs/launch.md).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from coinfer_device.ros.launch_support import critical_exit, monitor_exit, watch_processes

RESPAWN_DELAY_S = 2.0


def generate_launch_description():
    """Return the robot-side launch description."""
    share = FindPackageShare('coinfer')
    namespace = LaunchConfiguration('namespace')
    camera_params_file = LaunchConfiguration('camera_params_file')
    device_params_file = LaunchConfiguration('device_params_file')
    link_monitor_params_file = LaunchConfiguration('link_monitor_params_file')
    model_path = LaunchConfiguration('model_path')
    use_camera = LaunchConfiguration('use_camera')
    emulated_link = LaunchConfiguration('emulated_link')
    fastdds_profile = LaunchConfiguration('fastdds_profile')
    log_level = LaunchConfiguration('log_level')
    autostart = LaunchConfiguration('autostart')

    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='Robot namespace (e.g. robot1); all topics are relative to it'),
        DeclareLaunchArgument('camera_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'camera.yaml']),
                              description='Parameters of camera_node'),
        DeclareLaunchArgument('device_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'device.yaml']),
                              description='Parameters of device_node and cpu_monitor'),
        DeclareLaunchArgument('link_monitor_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'link_monitor.yaml']),
                              description='Parameters of link_monitor'),
        DeclareLaunchArgument('model_path', default_value='',
                              description="Model checkpoint for device_node ('' = the shipped model); "
                                          'overrides the params file'),
        DeclareLaunchArgument('use_camera', default_value='true',
                              description='Start the replay/camera node (false: another driver publishes image_raw)'),
        DeclareLaunchArgument('emulated_link', default_value='false',
                              description='Delay features through the in-process link emulator (device.yaml '
                                          'emulated_link.* sets the schedule)'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=PathJoinSubstitution([share, 'config', 'fastdds_profile.xml']),
                              description='Fast DDS profile (fast rediscovery of restarted nodes)'),
        DeclareLaunchArgument('log_level', default_value='info', description='Log level of every node'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='The device node configures and activates itself (false: it waits for '
                                          '`ros2 lifecycle set <ns>/device_node configure`, then `activate`)'),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', fastdds_profile),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile),
        watch_processes(),
        Node(package='coinfer', executable='camera_node', name='camera_node', namespace=namespace,
             parameters=[camera_params_file], condition=IfCondition(use_camera), output='screen',
             arguments=['--ros-args', '--log-level', log_level], on_exit=critical_exit),
        LifecycleNode(package='coinfer', executable='device_node', name='device_node', namespace=namespace,
                      parameters=[device_params_file,
                                  {'model_path': ParameterValue(model_path, value_type=str),
                                   'emulated_link.enabled': ParameterValue(emulated_link, value_type=bool),
                                   'autostart': ParameterValue(autostart, value_type=bool)}],
                      output='screen', arguments=['--ros-args', '--log-level', log_level], on_exit=critical_exit),
        Node(package='coinfer', executable='cpu_monitor', name='cpu_monitor', namespace=namespace,
             parameters=[device_params_file], output='screen', arguments=['--ros-args', '--log-level', log_level],
             respawn=True, respawn_delay=RESPAWN_DELAY_S, on_exit=monitor_exit),
        Node(package='coinfer', executable='link_monitor', name='link_monitor', namespace=namespace,
             parameters=[link_monitor_params_file], output='screen',
             arguments=['--ros-args', '--log-level', log_level],
             respawn=True, respawn_delay=RESPAWN_DELAY_S, on_exit=monitor_exit),
    ])
