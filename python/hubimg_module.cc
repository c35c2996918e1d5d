// The `hubimg` Python module: the same engine as the C++ library and the CLI, for Python workers.
//   m = hubimg.load(path); features = m(images)       # images: float32 NHWC NumPy array
// C-contiguous arrays of a supported dtype are viewed, not copied; results are NumPy arrays that
// view the library's buffers. The GIL is released while a model runs. Errors raise hubimg.Error
// (a RuntimeError) with the library's message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hubimg/image.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "hubimg/tensor.h"
#include "hubimg/version.h"

namespace py = pybind11;

namespace hubimg::python {
namespace {

// Set in the module init; raised for every error Status.
PyObject* g_error_type = nullptr;

[[noreturn]] void raise(const Status& status) {
  PyErr_SetString(g_error_type, status.message().c_str());
  throw py::error_already_set();
}

template <typename T>
T unwrap(Expected<T> result) {
  if (!result.ok()) raise(result.status());
  return std::move(result).value();
}

std::string dtype_text(const py::dtype& dtype) {
  return py::str(dtype.attr("name"));
}

Expected<DType> dtype_of_array(const py::array& array) {
  const py::dtype dtype = array.dtype();
  const char kind = dtype.kind();
  const auto size = dtype.itemsize();
  const std::string byteorder = py::str(dtype.attr("byteorder"));
  if (byteorder == ">") {
    return invalid_argument("big-endian arrays are not supported (dtype " + dtype_text(dtype) +
                            "); use .astype('<...')");
  }
  if (kind == 'f' && size == 4) return DType::kFloat32;
  if (kind == 'f' && size == 8) return DType::kFloat64;
  if (kind == 'f' && size == 2) return DType::kFloat16;
  if (kind == 'i' && size == 1) return DType::kInt8;
  if (kind == 'i' && size == 2) return DType::kInt16;
  if (kind == 'i' && size == 4) return DType::kInt32;
  if (kind == 'i' && size == 8) return DType::kInt64;
  if (kind == 'u' && size == 1) return DType::kUInt8;
  if (kind == 'u' && size == 2) return DType::kUInt16;
  if (kind == 'u' && size == 4) return DType::kUInt32;
  if (kind == 'u' && size == 8) return DType::kUInt64;
  if (kind == 'b' && size == 1) return DType::kBool;
  return invalid_argument("arrays of dtype " + dtype_text(dtype) +
                          " are not supported (float16/32/64, int8..int64, uint8..uint64, bool)");
}

// Views a NumPy array as a Tensor. A C-contiguous, aligned array is not copied: the Tensor keeps
// a reference to it (released with the GIL held, whichever thread drops the last Tensor).
Tensor tensor_from_array(py::array array) {
  const DType dtype = unwrap(dtype_of_array(array));
  const bool viewable = (array.flags() & py::array::c_style) &&
                        (array.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
  if (!viewable) array = py::array::ensure(array, py::array::c_style);
  Dims shape(array.shape(), array.shape() + array.ndim());
  PyObject* reference = array.ptr();
  Py_INCREF(reference);
  std::shared_ptr<const void> owner(reference, [](const void* object) {
    py::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(const_cast<void*>(object)));
  });
  return Tensor::wrap(dtype, std::move(shape), const_cast<void*>(array.data()), std::move(owner));
}

// Python values as TensorFlow converts them: float -> float32, int -> int32, bool -> bool;
// anything else through numpy.asarray.
Tensor tensor_from_object(const py::handle& value) {
  if (py::isinstance<py::bool_>(value)) return Tensor::scalar(value.cast<bool>());
  if (py::isinstance<py::int_>(value)) return Tensor::scalar(value.cast<int32_t>());
  if (py::isinstance<py::float_>(value)) return Tensor::scalar(value.cast<float>());
  if (py::isinstance<py::array>(value))
    return tensor_from_array(py::reinterpret_borrow<py::array>(value));
  py::module_ numpy = py::module_::import("numpy");
  return tensor_from_array(numpy.attr("asarray")(value));
}

std::map<std::string, Tensor> tensors_from_dict(const py::dict& values) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [key, value] : values) tensors[py::str(key)] = tensor_from_object(value);
  return tensors;
}

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt64: return py::dtype("int64");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    default: raise(invalid_argument("a " + dtype_name(dtype) + " tensor has no NumPy dtype"));
  }
}

// A NumPy array viewing the tensor's buffer (kept alive by the array). Read-only unless the
// tensor was the only holder of a buffer it allocated (a variable, a checkpoint or an input
// stays unwritable). bfloat16 becomes float32 and strings an object array of bytes (copies).
py::object array_from_tensor(Tensor tensor) {
  if (tensor.dtype() == DType::kString) {
    py::list items;
    for (const std::string& s : tensor.strings()) items.append(py::bytes(s));
    py::module_ numpy = py::module_::import("numpy");
    return numpy.attr("array")(items, "object")
        .attr("reshape")(py::tuple(py::cast(tensor.shape())));
  }
  if (tensor.dtype() == DType::kBFloat16) {
    Tensor converted(DType::kFloat32, tensor.shape());
    const auto* source = tensor.data<BFloat16>();
    float* target = converted.mutable_data<float>();
    for (int64_t i = 0; i < tensor.num_elements(); ++i) target[i] = source[i].to_float();
    tensor = std::move(converted);
  }
  const py::dtype dtype = numpy_dtype(tensor.dtype());
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(dtype_size(tensor.dtype()));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  const bool writable = tensor.owns_buffer_exclusively();
  void* data = const_cast<void*>(tensor.raw_data());
  auto holder = std::make_unique<Tensor>(std::move(tensor));
  py::capsule base(holder.get(), [](void* p) { delete static_cast<Tensor*>(p); });
  holder.release();
  py::array array(dtype, shape, strides, data, base);
  if (!writable) array.attr("flags").attr("writeable") = false;
  return array;
}

py::dict dict_from_tensors(std::map<std::string, Tensor> tensors) {
  py::dict result;
  for (auto& [key, tensor] : tensors) result[py::str(key)] = array_from_tensor(std::move(tensor));
  return result;
}

py::dict describe_specs(const std::vector<Model::InputSpec>& specs) {
  py::dict result;
  for (const auto& spec : specs) {
    py::dict entry;
    entry["dtype"] = dtype_name(spec.dtype);
    entry["shape"] = spec.shape.unknown_rank ? py::object(py::none()) : py::cast(spec.shape.dims);
    result[py::str(spec.name)] = entry;
  }
  return result;
}

CallOptions call_options(bool training, const py::kwargs& arguments) {
  CallOptions options;
  options.training = training;
  for (const auto& [key, value] : arguments)
    options.arguments[py::str(key)] = tensor_from_object(value);
  return options;
}

// A loaded model, shared with the NumPy views of its variables.
class PyModel {
 public:
  explicit PyModel(Model model) : model_(std::make_shared<Model>(std::move(model))) {}

  // m(images) -> array (or a list when __call__ returns several outputs); m({"x": a, "y": b})
  // -> dict by output name. Keyword arguments are __call__'s hyperparameters.
  py::object call(const py::object& inputs, bool training, const py::kwargs& arguments) const {
    CallOptions options = call_options(training, arguments);
    if (py::isinstance<py::dict>(inputs)) {
      std::map<std::string, Tensor> named = tensors_from_dict(inputs);
      Expected<std::map<std::string, Tensor>> result = invalid_argument("not run");
      {
        py::gil_scoped_release release;
        result = model_->call(named, options);
      }
      return dict_from_tensors(unwrap(std::move(result)));
    }
    Tensor input = tensor_from_object(inputs);
    Expected<std::vector<Tensor>> result = invalid_argument("not run");
    {
      py::gil_scoped_release release;
      result = (*model_)(input, options);
    }
    std::vector<Tensor> outputs = unwrap(std::move(result));
    if (outputs.size() == 1) return array_from_tensor(std::move(outputs[0]));
    py::list list;
    for (Tensor& output : outputs) list.append(array_from_tensor(std::move(output)));
    return list;
  }

  py::dict call_signature(const std::string& name, const py::kwargs& inputs) const {
    std::map<std::string, Tensor> named = tensors_from_dict(inputs);
    Expected<std::map<std::string, Tensor>> result = invalid_argument("not run");
    {
      py::gil_scoped_release release;
      result = model_->call_signature(name, named);
    }
    return dict_from_tensors(unwrap(std::move(result)));
  }

  py::dict signatures() const {
    py::dict result;
    for (const std::string& name : model_->signature_names()) {
      result[py::str(name)] = describe_specs(model_->signature_input_specs(name));
    }
    return result;
  }

  py::object call_inputs() const {
    if (!model_->has_call()) return py::none();
    return describe_specs(model_->call_input_specs());
  }

  // {name: read-only array viewing the variable's current value}, in the model's order.
  py::dict variables(bool trainable_only) const {
    py::dict result;
    for (const Variable* variable :
         trainable_only ? model_->trainable_variables() : model_->variables()) {
      result[py::str(variable->name())] = array_from_tensor(variable->value());
    }
    return result;
  }

  const std::vector<std::string>& load_warnings() const { return model_->load_warnings(); }

  // The class names the model ships (Model::labels_file()), or None.
  py::object labels() const {
    const std::filesystem::path file = model_->labels_file();
    if (file.empty()) return py::none();
    return py::cast(unwrap(read_labels(file)));
  }

 private:
  std::shared_ptr<Model> model_;
};

PyModel load_model(const std::filesystem::path& path, bool optimize) {
  LoadOptions options;
  options.optimize = optimize;
  Expected<Model> model = invalid_argument("not loaded");
  {
    py::gil_scoped_release release;
    model = Model::load(path, options);
  }
  return PyModel(unwrap(std::move(model)));
}

// float32 [H, W, 3] in [0, 1]; resized (as tf.image.resize, `interpolation` its method) to `size`
// (an int for a square, or (height, width)) when given.
py::object decode_image(const std::filesystem::path& path, const py::object& size, bool antialias,
                        const std::string& interpolation) {
  const ResizeMethod method = unwrap(resize_method_from_name(interpolation));
  std::optional<std::pair<int64_t, int64_t>> target;
  if (!size.is_none()) {
    if (py::isinstance<py::int_>(size)) {
      const auto side = size.cast<int64_t>();
      target = std::make_pair(side, side);
    } else {
      target = size.cast<std::pair<int64_t, int64_t>>();
    }
    if (target->first <= 0 || target->second <= 0) {
      raise(invalid_argument("decode_image: size must be positive, got (" +
                             std::to_string(target->first) + ", " + std::to_string(target->second) +
                             ")"));
    }
  }
  Expected<Tensor> image = invalid_argument("not decoded");
  {
    py::gil_scoped_release release;
    image = decode_image_file(path);
    if (image.ok() && target) {
      image = resize_image(*image, target->first, target->second,
                           ResizeOptions{.antialias = antialias, .method = method});
    }
  }
  return array_from_tensor(unwrap(std::move(image)));
}

}  // namespace
}  // namespace hubimg::python

PYBIND11_MODULE(hubimg, m) {
  using hubimg::python::PyModel;
  namespace hp = hubimg::python;
  m.doc() = "hubimg: run TensorFlow 2 image SavedModels (TF Hub models) without TensorFlow";

  static py::exception<std::runtime_error> error(m, "Error", PyExc_RuntimeError);
  hp::g_error_type = error.ptr();

  m.attr("__version__") = hubimg::version();
  m.attr("git_revision") = hubimg::git_revision();
  m.attr("kernel_backends") = hubimg::kernel_backends();

  py::class_<PyModel>(m, "Model")
      .def("__call__", &PyModel::call, py::arg("inputs"), py::kw_only(),
           py::arg("training") = false,
           "Root __call__ on an image batch (float32 NHWC; C-contiguous arrays are not copied) "
           "or on a dict of named inputs; keyword arguments are __call__'s hyperparameters")
      .def("call_signature", &PyModel::call_signature, py::arg("name"),
           "Runs a named signature on its inputs, given as keyword arguments; returns a dict")
      .def_property_readonly("signatures", &PyModel::signatures,
                             "{signature name: {input key: {'dtype', 'shape'}}}")
      .def_property_readonly("call_inputs", &PyModel::call_inputs,
                             "Inputs of the root __call__ ({name: {'dtype', 'shape'}}), or None")
      .def_property_readonly(
          "variables", [](const PyModel& self) { return self.variables(false); },
          "{name: read-only NumPy view of the variable's value}")
      .def_property_readonly(
          "trainable_variables", [](const PyModel& self) { return self.variables(true); },
          "{name: read-only NumPy view} of the trainable variables, in gradient order")
      .def_property_readonly("load_warnings", &PyModel::load_warnings)
      .def_property_readonly("labels", &PyModel::labels,
                             "Class names the model ships (assets/labels.txt, or labels.txt "
                             "beside the SavedModel folder), or None");

  m.def("load", &hp::load_model, py::arg("path"), py::kw_only(), py::arg("optimize") = true,
        "Loads a SavedModel directory or a .tar.gz, .tar or .zip of one");
  m.def("decode_image", &hp::decode_image, py::arg("path"), py::arg("size") = py::none(),
        py::kw_only(), py::arg("antialias") = false, py::arg("interpolation") = "bilinear",
        "Decodes a JPEG/PNG/WebP/BMP/GIF file to float32 [H, W, 3] in [0, 1], resized to size "
        "(int or (height, width)) like tf.image.resize when given (interpolation: its method, "
        "'bilinear', 'nearest', 'bicubic', 'area', 'lanczos3', 'lanczos5', 'gaussian' or "
        "'mitchellcubic')");
  m.def(
      "read_labels",
      [](const std::filesystem::path& path) { return hp::unwrap(hubimg::read_labels(path)); },
      py::arg("path"),
      "Class names, one per line (Teachable Machine's '0 name' lines lose their index)");
  m.def("read_npy", [](const std::filesystem::path& path) {
    return hp::array_from_tensor(hp::unwrap(hubimg::read_npy(path)));
  });
  // The array the library sees for `array` (what a call's input becomes), as a NumPy view: the
  // tests compare its address with the input's to check that no copy was made.
  m.def("_as_library_tensor",
        [](const py::array& array) { return hp::array_from_tensor(hp::tensor_from_array(array)); });
  m.def("set_num_threads", &hubimg::set_num_threads, py::arg("num_threads"),
        "Threads hubimg's kernels use in this process (<= 0: HUBIMG_NUM_THREADS or every core)");
  m.def("num_threads", &hubimg::num_threads);
}
