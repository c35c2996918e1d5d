// make_demo_images OUT_DIR: a few synthetic RGB pictures (gradient, stripes, disc, checkers)
// for scripts/package_test.sh (the README demo used them before it trained on Fashion-MNIST).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "hubimg/image.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const int64_t size = 96;
  using Pixel = std::function<void(float x, float y, float* rgb)>;
  const std::pair<const char*, Pixel> pictures[] = {
      {"gradient.png", [](float x, float y, float* p) { p[0] = x, p[1] = y, p[2] = 1 - x; }},
      {"stripes.png",
       [](float x, float, float* p) { p[0] = p[1] = p[2] = std::fmod(x * 8, 1.0f) < 0.5f; }},
      {"disc.png",
       [](float x, float y, float* p) {
         bool in = (x - .5f) * (x - .5f) + (y - .5f) * (y - .5f) < 0.09f;
         p[0] = in, p[1] = 0.3f, p[2] = !in;
       }},
      {"checkers.png",
       [](float x, float y, float* p) {
         bool on = (static_cast<int>(x * 6) + static_cast<int>(y * 6)) % 2;
         p[0] = on ? 0.9f : 0.1f, p[1] = on ? 0.8f : 0.2f, p[2] = 0.1f;
       }},
  };
  for (const auto& [name, pixel] : pictures) {
    hubimg::Tensor image(hubimg::DType::kFloat32, {size, size, 3});
    float* data = image.mutable_data<float>();
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) {
        pixel(static_cast<float>(x) / size, static_cast<float>(y) / size,
              data + (y * size + x) * 3);
      }
    }
    if (auto s = hubimg::write_png(dir / name, image); !s.ok()) {
      std::fprintf(stderr, "make_demo_images: %s\n", s.message().c_str());
      return 1;
    }
  }
  std::printf("4 images -> %s\n", dir.c_str());
  return 0;
}
