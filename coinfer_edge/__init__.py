# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Workstation side of coinfer: network tail, link estimation, SAC-d split policy."""
