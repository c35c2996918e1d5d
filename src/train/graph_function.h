// A TF1 signature as a function: TF1 SavedModels (Teachable Machine exports, TF1 Hub modules)
// name graph tensors rather than a FunctionDef, so a TF2 model built on one (a retrained
// classifier) needs the signature's nodes turned into a function first.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "format/saved_model.h"
#include "format/saved_model_writer.h"
#include "hubimg/status.h"

namespace hubimg::train {

struct GraphFunction {
  format::FunctionSignature signature;
  // The function's arguments after the image: one resource per variable it reads.
  std::vector<format::VariableHandle> captures;
};

// Adds to `writer` one function of the signature's single input (named "images") returning
// the output `output_key` ("" when the signature has one output). The nodes between the input
// placeholder and that output are copied; variables become resource arguments (a reference
// variable, VariableV2, is read with ReadVariableOp); TF1's tf.cond (Switch/Merge) is resolved
// when its predicate is a constant, as the graph builder resolves it; control inputs are
// dropped (in an inference graph they order assertions and initializers). `handle_of` gives the
// written variable of a model variable index. Errors name the signature and the node.
Expected<GraphFunction> graph_signature_function(
    const format::SavedModel& model, const format::Signature& signature,
    const std::string& output_key, format::SavedModelWriter& writer,
    const std::function<format::VariableHandle(int)>& handle_of, const std::string& where);

}  // namespace hubimg::train
