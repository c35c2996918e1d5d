#pragma once

#include "hubimg/variable.h"

namespace hubimg::ops {
using ::hubimg::Variable;
}  // namespace hubimg::ops
