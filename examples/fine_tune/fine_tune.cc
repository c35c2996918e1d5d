// fine_tune BASE DATA OUT [EPOCHS [MAX_EXAMPLES [SIZE]]]
//
// TF Hub's fine-tuning loop (hub.KerasLayer(trainable=True) + Dropout + Dense, as
// make_image_classifier builds it) written against hubimg's public library API alone:
// BASE is a feature-vector SavedModel used as a trainable hub layer; DATA is an image folder (one
// subfolder per class) or a folder of IDX files (Fashion-MNIST's train-* pair); a tenth of the
// first MAX_EXAMPLES images (default all) validates. Adam at Keras's defaults, batches of 32
// decoded and resized to SIZE x SIZE (default 32) on worker threads ahead of the step. The
// classifier is published to OUT as a Reusable SavedModel with the class names, then loaded back:
// its predictions on the validation images must be the in-memory classifier's.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "hubimg/classifier.h"
#include "hubimg/dataset.h"
#include "hubimg/model.h"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "fine_tune: %s\n", message.c_str());
  return 1;
}

int64_t argmax_row(const hubimg::Tensor& logits, int64_t row) {
  const int64_t classes = logits.dim(1);
  const float* p = logits.data<float>() + row * classes;
  return std::max_element(p, p + classes) - p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 7) {
    return fail("usage: fine_tune BASE DATA OUT [EPOCHS [MAX_EXAMPLES [SIZE]]]");
  }
  const int epochs = argc > 4 ? std::atoi(argv[4]) : 2;
  const int64_t max_examples = argc > 5 ? std::atoll(argv[5]) : -1;
  const int64_t size = argc > 6 ? std::atoll(argv[6]) : 32;
  if (epochs <= 0 || size <= 0) return fail("EPOCHS and SIZE must be positive");

  auto base = hubimg::load(argv[1]);
  if (!base.ok()) return fail(base.status().message());
  auto opened = hubimg::ImageDataset::open(argv[2]);
  if (!opened.ok()) return fail(opened.status().message());
  const auto dataset = std::make_shared<const hubimg::ImageDataset>(std::move(opened).value());
  const auto [train, validation] = dataset->split(0.1, max_examples);

  hubimg::ClassifierOptions options;
  options.hub.trainable = true;  // fine-tune the base too, not only the new head
  options.num_classes = dataset->num_classes();
  options.image_height = options.image_width = size;
  options.dropout_rate = 0.2;
  options.l2 = 1e-4;
  options.optimizer = hubimg::OptimizerOptions::keras_defaults(hubimg::OptimizerKind::kAdam);
  auto classifier = hubimg::ImageClassifier::create(std::move(base).value(), options);
  if (!classifier.ok()) return fail(classifier.status().message());

  hubimg::BatchStream::Options stream_options;
  stream_options.batch_size = 32;
  stream_options.height = stream_options.width = size;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int64_t> order;
    for (int64_t i : hubimg::shuffled_order(static_cast<int64_t>(train.size()), 1, epoch)) {
      order.push_back(train[static_cast<size_t>(i)]);
    }
    stream_options.epoch = epoch;
    hubimg::BatchStream batches(dataset, std::move(order), stream_options);
    double loss = 0, accuracy = 0;
    int64_t steps = 0;
    while (true) {
      auto batch = batches.next();
      if (!batch.ok()) return fail(batch.status().message());
      if (!batch->has_value()) break;
      auto metrics = classifier->train_step((*batch)->images, (*batch)->labels);
      if (!metrics.ok()) return fail(metrics.status().message());
      loss += metrics->loss, accuracy += metrics->accuracy, ++steps;
    }
    std::printf("epoch %d: loss %.4f, accuracy %.4f (%lld steps)\n", epoch + 1, loss / steps,
                accuracy / steps, static_cast<long long>(steps));
  }

  const auto out = std::string(argv[3]);
  if (hubimg::Status s = classifier->publish(out, dataset->class_names()); !s.ok()) {
    return fail(s.message());
  }
  auto published = hubimg::load(out);
  if (!published.ok()) return fail(published.status().message());

  hubimg::BatchStream batches(dataset, validation, stream_options);
  int64_t seen = 0, correct = 0, agreeing = 0;
  while (true) {
    auto batch = batches.next();
    if (!batch.ok()) return fail(batch.status().message());
    if (!batch->has_value()) break;
    const hubimg::Batch& b = **batch;
    auto evaluated = classifier->evaluate(b.images, b.labels);
    if (!evaluated.ok()) return fail(evaluated.status().message());
    auto logits = (*published)(b.images);
    if (!logits.ok()) return fail(logits.status().message());
    for (int64_t i = 0; i < b.labels.dim(0); ++i) {
      const int64_t predicted = evaluated->predictions[static_cast<size_t>(i)];
      correct += predicted == b.labels.data<int64_t>()[i];
      agreeing += predicted == argmax_row((*logits)[0], i);
      ++seen;
    }
  }
  if (seen == 0) return fail("no validation images");
  std::printf("validation accuracy %.4f (%lld images)\n",
              static_cast<double>(correct) / static_cast<double>(seen),
              static_cast<long long>(seen));
  std::printf("published to %s: the reloaded model agrees on %lld of %lld validation images\n",
              out.c_str(), static_cast<long long>(agreeing), static_cast<long long>(seen));
  return agreeing == seen ? 0 : 1;
}
