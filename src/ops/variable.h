#pragma once

#include "hubimg/model.h"

namespace hubimg::ops {
using ::hubimg::Variable;
}  // namespace hubimg::ops
