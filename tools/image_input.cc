#include "image_input.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "hubimg/image.h"

namespace hubimg::cli {
namespace {

struct InputShape {
  std::string key;
  int64_t height = -1, width = -1, channels = 3;
};

Expected<InputShape> model_input(const Model& model, const ImageInputOptions& o) {
  std::vector<Model::InputSpec> specs;
  std::string what;
  if (!o.signature.empty() && o.signature != "__call__") {
    specs = model.signature_input_specs(o.signature);
    what = "signature '" + o.signature + "'";
  } else if (model.has_call()) {
    specs = inputs_without_defaults(model.call_input_specs());
    what = "__call__";
  } else {
    const std::string name = model.default_signature();
    if (name.empty()) {
      return invalid_argument(
          "the model has no __call__, no serving_default and no default "
          "signature: name one with --signature");
    }
    specs = model.signature_input_specs(name);
    what = "signature '" + name + "'";
  }
  if (specs.size() != 1) {
    return invalid_argument(
        what + " takes " + std::to_string(specs.size()) +
        " inputs without a default; image commands need exactly one image input");
  }
  InputShape in;
  in.key = specs[0].name;
  const PartialShape& s = specs[0].shape;
  if (!s.unknown_rank) {
    if (s.dims.size() != 4) {
      return invalid_argument(what + " input '" + in.key + "' has shape " + s.to_string() +
                              ", not an image batch [batch, height, width, channels]");
    }
    in.height = s.dims[1];
    in.width = s.dims[2];
    if (s.dims[3] > 0) in.channels = s.dims[3];
  }
  if (!o.size.empty()) {
    int64_t h = 0, w = 0;
    if (std::sscanf(o.size.c_str(), "%ldx%ld", &h, &w) != 2 || h <= 0 || w <= 0) {
      return invalid_argument("--size wants HxW, got '" + o.size + "'");
    }
    if ((in.height > 0 && in.height != h) || (in.width > 0 && in.width != w)) {
      return invalid_argument("--size " + o.size + " conflicts with the model's fixed input " +
                              s.to_string());
    }
    in.height = h;
    in.width = w;
  }
  if (in.height <= 0 || in.width <= 0) {
    return invalid_argument(what + " accepts any image size " + s.to_string() +
                            "; choose one with --size HxW");
  }
  if (in.channels != 1 && in.channels != 3) {
    return invalid_argument(what + " wants " + std::to_string(in.channels) + " channels");
  }
  return in;
}

void draw_progress(size_t done, size_t total) {
  const int width = 40;
  int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu", filled,
               "========================================", width - filled, "", done, total);
  if (done == total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace

void add_image_input_options(CLI::App* cmd, ImageInputOptions& o) {
  cmd->add_option("--signature", o.signature,
                  "Signature to run (default: __call__, else serving_default, else default)");
  cmd->add_option("--size", o.size, "Input HxW when the model accepts any size");
  cmd->add_option("--range", o.range,
                  "Pixel range the model expects, lo,hi (default 0,1 as TF Hub; e.g. 0,255)");
  cmd->add_option("--batch", o.batch, "Images per batch")->check(CLI::Range(1, 4096));
  cmd->add_flag("--antialias", o.antialias, "Antialias when downscaling");
  cmd->add_option("--interpolation", o.interpolation,
                  "Resize method, as tf.image.resize's: bilinear (default), nearest, bicubic, "
                  "area, lanczos3, lanczos5, gaussian or mitchellcubic")
      ->check(CLI::IsMember({"bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                             "gaussian", "mitchellcubic"}));
  cmd->add_flag("--strict", o.strict,
                "Stop at the first image that cannot be read (default: skip it with a warning "
                "and report how many were skipped)");
}

Expected<std::vector<std::filesystem::path>> collect_images(const std::vector<std::string>& args) {
  std::vector<std::filesystem::path> files;
  for (const auto& a : args) {
    std::error_code ec;
    const auto status = std::filesystem::status(a, ec);
    if (std::filesystem::is_directory(status)) {
      std::vector<std::filesystem::path> in_dir;
      std::filesystem::directory_iterator it(a, ec), end;
      if (ec) return failed_precondition(a + ": cannot list the folder: " + ec.message());
      for (; it != end; it.increment(ec)) {
        if (ec) break;
        // A broken link or a symlink loop is not a regular file; it is left out.
        std::error_code type_ec;
        if (it->is_regular_file(type_ec) && has_image_extension(it->path())) {
          in_dir.push_back(it->path());
        }
      }
      if (ec) return failed_precondition(a + ": cannot list the folder: " + ec.message());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (ec && ec != std::errc::no_such_file_or_directory) {
      return failed_precondition(a + ": " + ec.message());
    } else if (std::filesystem::exists(status)) {
      files.emplace_back(a);
    } else {
      return not_found(a + ": no such file or directory");
    }
  }
  if (files.empty()) return invalid_argument("no image files given");
  return files;
}

namespace {

struct ModelOutput {
  std::string name;
  Tensor value;
};

Expected<ModelOutput> first_output(const Model& model, const InputShape& in,
                                   const ImageInputOptions& o, const Tensor& batch) {
  std::vector<ModelOutput> outs;
  if (!o.signature.empty() && o.signature != "__call__") {
    HUBIMG_ASSIGN_OR_RETURN(auto named, model.call_signature(o.signature, {{in.key, batch}}));
    for (auto& [k, v] : named) outs.push_back({"'" + k + "'", v});
  } else if (model.has_call()) {
    HUBIMG_ASSIGN_OR_RETURN(auto values, model(batch));
    for (size_t i = 0; i < values.size(); ++i) {
      outs.push_back({"output_" + std::to_string(i) + " of __call__", values[i]});
    }
  } else {
    HUBIMG_ASSIGN_OR_RETURN(auto named,
                            model.call_signature(model.default_signature(), {{in.key, batch}}));
    for (auto& [k, v] : named) outs.push_back({"'" + k + "'", v});
  }
  if (outs.empty()) return invalid_argument("the model returned no outputs");
  return outs[0];
}

// The batch of the readable images of `chunk`; the others go to `skipped` (with a warning).
Expected<Tensor> load_readable(std::span<const std::filesystem::path> chunk, const InputShape& in,
                               const ImageInputOptions& o,
                               std::vector<std::filesystem::path>& loaded,
                               std::vector<std::filesystem::path>& skipped) {
  const ColorMode mode = in.channels == 1 ? ColorMode::kGray : ColorMode::kRgb;
  std::vector<ImageLoadFailure> failures;
  HUBIMG_ASSIGN_OR_RETURN(ResizeMethod method, resize_method_from_name(o.interpolation));
  HUBIMG_ASSIGN_OR_RETURN(
      Tensor batch, load_image_batch(chunk, in.height, in.width, mode,
                                     ResizeOptions{.antialias = o.antialias, .method = method},
                                     o.strict ? nullptr : &failures));
  size_t next_failure = 0;
  for (size_t i = 0; i < chunk.size(); ++i) {
    if (next_failure < failures.size() && failures[next_failure].index == i) {
      std::fprintf(stderr, "hubimg: warning: skipping %s\n",
                   failures[next_failure].status.message().c_str());
      skipped.push_back(chunk[i]);
      ++next_failure;
    } else {
      loaded.push_back(chunk[i]);
    }
  }
  return batch;
}

}  // namespace

Expected<ImageRows> run_on_images(const Model& model,
                                  const std::vector<std::filesystem::path>& files,
                                  const ImageInputOptions& o, bool progress) {
  HUBIMG_ASSIGN_OR_RETURN(InputShape in, model_input(model, o));
  float lo = 0, hi = 1;
  if (std::sscanf(o.range.c_str(), "%f,%f", &lo, &hi) != 2 || !(hi > lo)) {
    return invalid_argument("--range wants lo,hi with hi > lo, got '" + o.range + "'");
  }
  progress = progress && isatty(STDERR_FILENO);
  ImageRows result;
  Dims row_shape;  // of the first batch; every batch must match it
  int64_t row_elems = 0;
  int64_t rows_done = 0;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(o.batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(o.batch));
    std::span<const std::filesystem::path> chunk(files.data() + start, end - start);
    HUBIMG_ASSIGN_OR_RETURN(Tensor batch,
                            load_readable(chunk, in, o, result.files, result.skipped));
    const int64_t n = batch.dim(0);
    if (progress && result.skipped.empty()) draw_progress(end, files.size());
    if (n == 0) continue;  // every image of this batch was skipped
    if (lo != 0 || hi != 1) {
      float* p = batch.mutable_data<float>();
      for (int64_t i = 0; i < batch.num_elements(); ++i) p[i] = lo + p[i] * (hi - lo);
    }
    HUBIMG_ASSIGN_OR_RETURN(ModelOutput out, first_output(model, in, o, batch));
    const Tensor& t = out.value;
    if (t.dtype() != DType::kFloat32 || t.rank() < 1 || t.dim(0) != n) {
      return invalid_argument("the model's output " + out.name + " is " + t.description() +
                              ", not float32 rows for the " + std::to_string(n) + " images");
    }
    const Dims this_row(t.shape().begin() + 1, t.shape().end());
    if (!result.rows.valid()) {
      row_shape = this_row;
      row_elems = t.num_elements() / n;
      if (row_elems == 0) {
        return invalid_argument("the model's output " + out.name + " is " + t.description() +
                                ": its rows are empty (no features or classes)");
      }
      Dims shape = t.shape();
      shape[0] = static_cast<int64_t>(files.size());
      HUBIMG_ASSIGN_OR_RETURN(result.rows, Tensor::create(DType::kFloat32, shape));
    } else if (this_row != row_shape) {
      Dims first = row_shape;
      first.insert(first.begin(), -1);
      return invalid_argument("the model's output " + out.name + " is " + t.description() +
                              " for a batch of " + std::to_string(n) +
                              " images, but its rows had the shape " +
                              PartialShape::known(first).to_string() +
                              " before: rows must have the same shape in every batch");
    }
    std::memcpy(result.rows.mutable_data<float>() + rows_done * row_elems, t.data<float>(),
                static_cast<size_t>(n * row_elems) * sizeof(float));
    rows_done += n;
  }
  if (rows_done == 0) {
    return invalid_argument("none of the " + std::to_string(files.size()) +
                            " images could be read (see the warnings above)");
  }
  if (rows_done < static_cast<int64_t>(files.size())) {
    Dims shape = result.rows.shape();
    shape[0] = rows_done;
    HUBIMG_ASSIGN_OR_RETURN(Tensor fewer, Tensor::create(DType::kFloat32, shape));
    std::memcpy(fewer.mutable_data<float>(), result.rows.data<float>(), fewer.byte_size());
    result.rows = std::move(fewer);
  }
  return result;
}

}  // namespace hubimg::cli
