// Copyright 2026 The Kiln Authors.
#include "kiln/version.h"

namespace kiln {

const char* Version() { return KILN_VERSION_STRING; }

}  // namespace kiln
