# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Robot side of coinfer: camera input, network head, feature codec, CPU monitor."""
