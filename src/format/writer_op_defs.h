// TensorFlow's OpDefs (input/output argument names and types, attributes and defaults) for the
// ops SavedModelWriter emits; they name function outputs ("MatMul:product:0"), fill type
// attributes and go into meta_info_def.stripped_op_list.
#pragma once

#include <string_view>

namespace hubimg::tf {
class OpDef;
}

namespace hubimg::format {

// nullptr for ops the table does not have.
const tf::OpDef* find_writer_op_def(std::string_view op);

}  // namespace hubimg::format
