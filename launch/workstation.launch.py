# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Workstation side: edge node, workstation CPU monitor and policy node.

One robot: ``ros2 launch coinfer workstation.launch.py namespace:=robot1``.
One edge for several robots (``robot_namespaces`` in edge.yaml) and one policy per robot:
``ros2 launch coinfer workstation.launch.py use_policy:=false`` once, then per robot
``ros2 launch coinfer workstation.launch.py use_edge:=false namespace:=robot1`` (the edge publishes its
``compute_slowdown`` in every robot namespace it serves, where the policy reads it).

The edge and policy nodes are lifecycle nodes that configure and activate themselves
(``autostart``; ``autostart:=false`` leaves the transitions to ``ros2 lifecycle set``), and
critical: their exit ends the launch.  The CPU monitor is respawned (docs/launch.md).
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
    """Return the workstation-side launch description."""
    share = FindPackageShare('coinfer')
    namespace = LaunchConfiguration('namespace')
    edge_params_file = LaunchConfiguration('edge_params_file')
    policy_params_file = LaunchConfiguration('policy_params_file')
    model_path = LaunchConfiguration('model_path')
    policy = LaunchConfiguration('policy')
    policy_path = LaunchConfiguration('policy_path')
    profile_path = LaunchConfiguration('profile_path')
    use_edge = LaunchConfiguration('use_edge')
    use_policy = LaunchConfiguration('use_policy')
    fastdds_profile = LaunchConfiguration('fastdds_profile')
    log_level = LaunchConfiguration('log_level')
    autostart = LaunchConfiguration('autostart')

    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the edge and policy (the robot namespace for one robot)'),
        DeclareLaunchArgument('edge_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'edge.yaml']),
                              description='Parameters of edge_node and edge_cpu_monitor'),
        DeclareLaunchArgument('policy_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'policy.yaml']),
                              description='Parameters of policy_node'),
        DeclareLaunchArgument('model_path', default_value='',
                              description="Model checkpoint for edge_node ('' = the shipped model; must match the "
                                          "robots' model); overrides the params file"),
        DeclareLaunchArgument('policy', default_value='sacd',
                              description="'sacd' (trained policy) or 'rule' (exhaustive search)"),
        DeclareLaunchArgument('policy_path', default_value='',
                              description="Trained policy file ('' = the shipped one)"),
        DeclareLaunchArgument('profile_path', default_value='',
                              description="Machine profile JSON ('' = the shipped one)"),
        DeclareLaunchArgument('use_edge', default_value='true', description='Start edge_node and edge_cpu_monitor'),
        DeclareLaunchArgument('use_policy', default_value='true', description='Start policy_node'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=PathJoinSubstitution([share, 'config', 'fastdds_profile.xml']),
                              description='Fast DDS profile (fast rediscovery of restarted nodes)'),
        DeclareLaunchArgument('log_level', default_value='info', description='Log level of every node'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='The edge and policy nodes configure and activate themselves (false: '
                                          'they wait for `ros2 lifecycle set <node> configure`, then `activate`)'),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', fastdds_profile),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile),
        watch_processes(),
        LifecycleNode(package='coinfer', executable='edge_node', name='edge_node', namespace=namespace,
                      parameters=[edge_params_file, {'model_path': ParameterValue(model_path, value_type=str),
                                                     'autostart': ParameterValue(autostart, value_type=bool)}],
                      condition=IfCondition(use_edge), output='screen',
                      arguments=['--ros-args', '--log-level', log_level], on_exit=critical_exit),
        Node(package='coinfer', executable='cpu_monitor', name='edge_cpu_monitor', namespace=namespace,
             parameters=[edge_params_file], condition=IfCondition(use_edge), output='screen',
             arguments=['--ros-args', '--log-level', log_level],
             respawn=True, respawn_delay=RESPAWN_DELAY_S, on_exit=monitor_exit),
        LifecycleNode(package='coinfer', executable='policy_node', name='policy_node', namespace=namespace,
                      parameters=[policy_params_file,
                                  {'policy': ParameterValue(policy, value_type=str),
                                   'policy_path': ParameterValue(policy_path, value_type=str),
                                   'profile_path': ParameterValue(profile_path, value_type=str),
                                   'autostart': ParameterValue(autostart, value_type=bool)}],
                      condition=IfCondition(use_policy), output='screen',
                      arguments=['--ros-args', '--log-level', log_level], on_exit=critical_exit),
    ])
