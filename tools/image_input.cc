#include "image_input.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "hubimg/image.h"

namespace hubimg::cli {
namespace {

bool has_image_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp";
}

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
    specs = model.call_input_specs();
    what = "__call__";
  } else {
    specs = model.signature_input_specs("serving_default");
    what = "signature 'serving_default'";
  }
  if (specs.size() != 1) {
    return invalid_argument(what + " takes " + std::to_string(specs.size()) +
                            " inputs; image commands need exactly one image input");
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
  cmd->add_option("--signature", o.signature, "Signature to run (default: __call__)");
  cmd->add_option("--size", o.size, "Input HxW when the model accepts any size");
  cmd->add_option("--range", o.range,
                  "Pixel range the model expects, lo,hi (default 0,1 as TF Hub; e.g. 0,255)");
  cmd->add_option("--batch", o.batch, "Images per batch")->check(CLI::Range(1, 4096));
  cmd->add_flag("--antialias", o.antialias, "Antialias when downscaling");
}

Expected<std::vector<std::filesystem::path>> collect_images(const std::vector<std::string>& args) {
  std::vector<std::filesystem::path> files;
  for (const auto& a : args) {
    std::error_code ec;
    if (std::filesystem::is_directory(a, ec)) {
      std::vector<std::filesystem::path> in_dir;
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.is_regular_file() && has_image_extension(e.path())) in_dir.push_back(e.path());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (std::filesystem::exists(a, ec)) {
      files.emplace_back(a);
    } else {
      return not_found(a + ": no such file or directory");
    }
  }
  if (files.empty()) return invalid_argument("no image files given");
  return files;
}

Expected<Tensor> run_on_images(const Model& model, const std::vector<std::filesystem::path>& files,
                               const ImageInputOptions& o, bool progress) {
  HUBIMG_ASSIGN_OR_RETURN(InputShape in, model_input(model, o));
  float lo = 0, hi = 1;
  if (std::sscanf(o.range.c_str(), "%f,%f", &lo, &hi) != 2 || !(hi > lo)) {
    return invalid_argument("--range wants lo,hi with hi > lo, got '" + o.range + "'");
  }
  progress = progress && isatty(STDERR_FILENO);
  Tensor result;
  int64_t row_elems = 0;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(o.batch)) {
    size_t end = std::min(files.size(), start + static_cast<size_t>(o.batch));
    std::span<const std::filesystem::path> chunk(files.data() + start, end - start);
    HUBIMG_ASSIGN_OR_RETURN(Tensor batch,
                            load_image_batch(chunk, in.height, in.width,
                                             in.channels == 1 ? ColorMode::kGray : ColorMode::kRgb,
                                             ResizeOptions{o.antialias}));
    if (lo != 0 || hi != 1) {
      float* p = batch.mutable_data<float>();
      for (int64_t i = 0; i < batch.num_elements(); ++i) p[i] = lo + p[i] * (hi - lo);
    }
    std::vector<Tensor> outs;
    if (!o.signature.empty() && o.signature != "__call__") {
      HUBIMG_ASSIGN_OR_RETURN(auto named, model.call_signature(o.signature, {{in.key, batch}}));
      for (auto& [k, v] : named) outs.push_back(v);
    } else if (model.has_call()) {
      HUBIMG_ASSIGN_OR_RETURN(outs, model(batch));
    } else {
      HUBIMG_ASSIGN_OR_RETURN(auto named,
                              model.call_signature("serving_default", {{in.key, batch}}));
      for (auto& [k, v] : named) outs.push_back(v);
    }
    if (outs.empty()) return internal_error("the model returned no outputs");
    Tensor out = outs[0];
    if (out.dtype() != DType::kFloat32 || out.rank() < 1 ||
        out.dim(0) != static_cast<int64_t>(chunk.size())) {
      return invalid_argument("the model's first output is " + out.description() +
                              ", not float32 rows for the " + std::to_string(chunk.size()) +
                              " images");
    }
    if (!result.valid()) {
      Dims shape = out.shape();
      shape[0] = static_cast<int64_t>(files.size());
      result = Tensor(DType::kFloat32, shape);
      row_elems = out.num_elements() / out.dim(0);
    }
    std::memcpy(result.mutable_data<float>() + static_cast<int64_t>(start) * row_elems,
                out.data<float>(), out.byte_size());
    if (progress) draw_progress(end, files.size());
  }
  return result;
}

}  // namespace hubimg::cli
