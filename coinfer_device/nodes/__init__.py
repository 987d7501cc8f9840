# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
