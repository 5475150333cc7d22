// Copyright 2026 The Kiln Authors.
// Conformance tests (filled in by the op group owner).
#include "tests/testing/testing.h"
