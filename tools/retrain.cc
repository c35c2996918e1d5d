// `hubimg retrain MODEL DATA --output OUT [--test DATA] [--log FILE.jsonl] ...`: TF Hub's
// make_image_classifier in C++. A hub layer over MODEL (frozen, or fine-tuned with
// --fine-tune), Dropout and a Dense softmax head, trained on an image folder or IDX files, with
// a checkpoint after every epoch (--resume continues from it), a JSON line per epoch in the log,
// the test accuracy and confusion matrix at the end, and the classifier published to OUT.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "commands.h"
#include "hubimg/classifier.h"
#include "hubimg/dataset.h"
#include "hubimg/model.h"
#include "hubimg/train.h"
#include "train/checkpoint.h"

namespace hubimg::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct RetrainArgs {
  std::string model;
  std::string data;
  std::string output;
  std::string test;
  std::string log;
  std::string work_dir;
  std::string class_names;
  int epochs = 5;
  int batch_size = 32;
  double learning_rate = 0.005;
  double momentum = 0.9;
  double dropout = 0.2;
  double l2 = 1e-4;
  double label_smoothing = 0.1;
  double validation_split = 0.2;
  bool fine_tune = false;
  bool augment = false;
  std::string image_size;
  std::string optimizer = "sgd";
  std::string lr_schedule = "constant";
  double decay_rate = 0.9;
  double weight_decay = 0.004;
  std::optional<double> batch_norm_momentum;
  std::string output_key;
  std::string signature;
  uint64_t seed = 1;
  bool resume = false;
  bool keep_best = false;
  int64_t recalibrate_bn = 0;
  int64_t max_examples = -1;
  int64_t max_test_examples = -1;
  int prefetch = 2;
  int eval_batch_size = 256;
};

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

Expected<std::pair<int64_t, int64_t>> parse_image_size(const std::string& text) {
  const auto x = text.find('x');
  try {
    if (x == std::string::npos) {
      const int64_t s = std::stoll(text);
      if (s > 0 && s <= 4096) return std::pair{s, s};
    } else {
      size_t used_h = 0, used_w = 0;
      const int64_t h = std::stoll(text.substr(0, x), &used_h);
      const int64_t w = std::stoll(text.substr(x + 1), &used_w);
      if (used_h == x && used_w == text.size() - x - 1 && h > 0 && w > 0 && h <= 4096 &&
          w <= 4096) {
        return std::pair{h, w};
      }
    }
  } catch (const std::exception&) {
  }
  return invalid_argument("--image-size wants HxW (e.g. 224x224) or N, got '" + text + "'");
}

// Progress on stderr: a redrawn bar on a terminal, a plain line every tenth of the epoch
// otherwise.
class Progress {
 public:
  Progress(int epoch, int epochs, int64_t batches)
      : epoch_(epoch),
        epochs_(epochs),
        batches_(batches),
        tty_(isatty(STDERR_FILENO) != 0),
        start_(Clock::now()) {}
  void update(int64_t done, int64_t images, double loss, double accuracy) {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = secs > 0 ? static_cast<double>(images) / secs : 0;
    const double eta =
        done > 0 ? secs / static_cast<double>(done) * static_cast<double>(batches_ - done) : 0;
    if (tty_) {
      if (done != batches_ && secs - last_draw_ < 0.2) return;
      last_draw_ = secs;
      const int width = 24;
      const int filled = batches_ ? static_cast<int>(width * done / batches_) : width;
      std::string bar(static_cast<size_t>(filled), '=');
      if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
      std::fprintf(stderr,
                   "\rEpoch %d/%d [%s] %lld/%lld loss %.4f acc %.4f %.0f img/s ETA %d:%02d   ",
                   epoch_, epochs_, bar.c_str(), static_cast<long long>(done),
                   static_cast<long long>(batches_), loss, accuracy, rate,
                   static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
      std::fflush(stderr);
    } else {
      const int64_t tenth = std::max<int64_t>(1, batches_ / 10);
      if (done % tenth != 0 && done != batches_) return;
      std::fprintf(stderr, "epoch %d/%d: batch %lld/%lld loss %.4f acc %.4f %.0f img/s ETA %.0fs\n",
                   epoch_, epochs_, static_cast<long long>(done), static_cast<long long>(batches_),
                   loss, accuracy, rate, eta);
    }
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  int epoch_, epochs_;
  int64_t batches_;
  bool tty_;
  Clock::time_point start_;
  double last_draw_ = -1;
};

struct Split {
  std::vector<int64_t> examples;  // dataset indices
  // Frozen base without augmentation: each example's features, row k for examples[k] (rows of
  // examples that failed to decode are dropped from both).
  Tensor features;
};

// Features of every example of `split` (inference), computed once.
Status cache_features(const ImageClassifier& classifier,
                      const std::shared_ptr<const ImageDataset>& data, Split& split,
                      const RetrainArgs& a, int64_t h, int64_t w, const std::string& what) {
  BatchStream::Options o;
  o.batch_size = a.eval_batch_size;
  o.height = h;
  o.width = w;
  o.prefetch = a.prefetch;
  BatchStream stream(data, split.examples, o);
  std::vector<int64_t> kept;
  std::vector<float> rows;
  const auto start = Clock::now();
  while (true) {
    HUBIMG_ASSIGN_OR_RETURN(auto batch, stream.next());
    if (!batch) break;
    HUBIMG_ASSIGN_OR_RETURN(Tensor f, classifier.features(batch->images));
    const auto v = f.values<float>();
    rows.insert(rows.end(), v.begin(), v.end());
    kept.insert(kept.end(), batch->examples.begin(), batch->examples.end());
  }
  for (const auto& warning : stream.warnings())
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  const auto n = static_cast<int64_t>(kept.size());
  split.features = Tensor::from_vector<float>({n, classifier.num_features()}, rows);
  split.examples = std::move(kept);
  std::fprintf(stderr, "%s: features of %lld images cached in %.1fs\n", what.c_str(),
               static_cast<long long>(n),
               std::chrono::duration<double>(Clock::now() - start).count());
  return {};
}

Tensor gather_rows(const Tensor& features, std::span<const int64_t> rows) {
  const int64_t f = features.dim(1);
  Tensor out(DType::kFloat32, {static_cast<int64_t>(rows.size()), f});
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(out.mutable_data<float>() + static_cast<int64_t>(i) * f,
                features.data<float>() + rows[i] * f, static_cast<size_t>(f) * sizeof(float));
  }
  return out;
}

struct EvalTotals {
  double loss = 0, correct = 0, top5 = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  double accuracy() const { return count ? correct / static_cast<double>(count) : 0; }
};

Expected<EvalTotals> evaluate_split(const ImageClassifier& classifier,
                                    const std::shared_ptr<const ImageDataset>& data,
                                    const Split& split, const RetrainArgs& a, int64_t h,
                                    int64_t w) {
  const int64_t c = classifier.options().num_classes;
  EvalTotals t;
  t.confusion.assign(static_cast<size_t>(c), std::vector<int64_t>(static_cast<size_t>(c), 0));
  auto add = [&](const EvalMetrics& m, const Tensor& labels) {
    const int64_t b = labels.num_elements();
    t.loss += m.loss * static_cast<double>(b);
    t.correct += m.accuracy * static_cast<double>(b);
    t.top5 += m.top5_accuracy * static_cast<double>(b);
    t.count += b;
    for (int64_t i = 0; i < b; ++i) {
      ++t.confusion[static_cast<size_t>(labels.data<int64_t>()[i])]
                   [static_cast<size_t>(m.predictions[static_cast<size_t>(i)])];
    }
  };
  if (split.features.valid()) {
    const int64_t n = static_cast<int64_t>(split.examples.size());
    for (int64_t begin = 0; begin < n; begin += a.eval_batch_size) {
      const int64_t end = std::min<int64_t>(n, begin + a.eval_batch_size);
      std::vector<int64_t> rows;
      Tensor labels(DType::kInt64, {end - begin});
      for (int64_t k = begin; k < end; ++k) {
        rows.push_back(k);
        labels.mutable_data<int64_t>()[k - begin] =
            data->label(split.examples[static_cast<size_t>(k)]);
      }
      HUBIMG_ASSIGN_OR_RETURN(
          auto m, classifier.evaluate_features(gather_rows(split.features, rows), labels));
      add(m, labels);
    }
  } else {
    BatchStream::Options o;
    o.batch_size = a.eval_batch_size;
    o.height = h;
    o.width = w;
    o.prefetch = a.prefetch;
    BatchStream stream(data, split.examples, o);
    while (true) {
      HUBIMG_ASSIGN_OR_RETURN(auto batch, stream.next());
      if (!batch) break;
      HUBIMG_ASSIGN_OR_RETURN(auto m, classifier.evaluate(batch->images, batch->labels));
      add(m, batch->labels);
    }
  }
  if (t.count) {
    t.loss /= static_cast<double>(t.count);
    t.top5 /= static_cast<double>(t.count);
  }
  return t;
}

std::string confusion_text(const EvalTotals& t, const std::vector<std::string>& names) {
  std::string out = "true\\predicted";
  for (const auto& name : names) out.append("\t").append(name);
  out += "\n";
  for (size_t i = 0; i < names.size(); ++i) {
    out += names[i];
    for (size_t j = 0; j < names.size(); ++j)
      out.append("\t").append(std::to_string(t.confusion[i][j]));
    out += "\n";
  }
  return out;
}

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return internal_error(path.string() + ": cannot write");
  return {};
}

// The checkpoint's value under `key` when it has `v`'s dtype and shape, else null.
const Tensor* matching_value(const std::map<std::string, Tensor>& saved, const std::string& key,
                             const Variable& v) {
  auto it = saved.find(key);
  if (it == saved.end() || it->second.dtype() != v.value().dtype() ||
      it->second.shape() != v.value().shape()) {
    return nullptr;
  }
  return &it->second;
}

// --keep-best: the weights of the epoch with the highest validation accuracy so far (the first
// such epoch on ties), as Keras' EarlyStopping(restore_best_weights=True) keeps them. The
// checkpoint carries them ("best/<variable>"), so that --resume continues the comparison.
struct BestEpoch {
  int epoch = 0;
  double accuracy = -1;
  std::map<std::string, Tensor> weights;

  void offer(int e, double val_accuracy, const std::vector<Variable*>& variables) {
    if (val_accuracy <= accuracy) return;
    epoch = e;
    accuracy = val_accuracy;
    for (Variable* v : variables) weights[v->name()] = v->value().clone();
  }
  void save(std::map<std::string, Tensor>& state) const {
    state["meta/best_epoch"] = Tensor::scalar<int64_t>(epoch);
    state["meta/best_val_accuracy"] = Tensor::scalar<double>(accuracy);
    for (const auto& [name, value] : weights) state["best/" + name] = value;
  }
  Status restore(const std::map<std::string, Tensor>& state,
                 const std::vector<Variable*>& variables) {
    auto e = state.find("meta/best_epoch");
    auto acc = state.find("meta/best_val_accuracy");
    if (e == state.end() || e->second.dtype() != DType::kInt64 || acc == state.end() ||
        acc->second.dtype() != DType::kFloat64) {
      return invalid_argument("no best epoch recorded (meta/best_epoch, meta/best_val_accuracy)");
    }
    epoch = static_cast<int>(e->second.data<int64_t>()[0]);
    accuracy = acc->second.data<double>()[0];
    if (epoch == 0) return {};  // no epoch was validated yet
    for (Variable* v : variables) {
      const Tensor* value = matching_value(state, "best/" + v->name(), *v);
      if (!value) {
        return invalid_argument("no matching best-epoch value for variable '" + v->name() + "'");
      }
      weights[v->name()] = *value;
    }
    return {};
  }
  void assign_to(const std::vector<Variable*>& variables) const {
    for (Variable* v : variables) v->assign(weights.at(v->name()));
  }
};

// What a checkpoint must agree on to be resumed.
std::map<std::string, Tensor> run_fingerprint(const RetrainArgs& a, int64_t num_classes,
                                              int64_t train_size) {
  return {{"meta/seed", Tensor::scalar<int64_t>(static_cast<int64_t>(a.seed))},
          {"meta/num_classes", Tensor::scalar<int64_t>(num_classes)},
          {"meta/train_examples", Tensor::scalar<int64_t>(train_size)},
          {"meta/batch_size", Tensor::scalar<int64_t>(a.batch_size)},
          {"meta/fine_tune", Tensor::scalar<int64_t>(a.fine_tune)},
          {"meta/augment", Tensor::scalar<int64_t>(a.augment)},
          {"meta/keep_best", Tensor::scalar<int64_t>(a.keep_best)}};
}

int retrain(const RetrainArgs& a) {
  auto fail = [](const Status& s) { return report_error(s.to_string()); };
  if (a.epochs < 1) return report_error("--epochs must be >= 1");
  if (a.batch_size < 1) return report_error("--batch-size must be >= 1");
  if (a.keep_best && !(a.validation_split > 0)) {
    return report_error(
        "--keep-best picks an epoch by validation accuracy: it needs "
        "--validation-split > 0");
  }
  if (a.recalibrate_bn < 0) return report_error("--recalibrate-bn must be >= 0");
  if (a.recalibrate_bn > 0 && !a.fine_tune) {
    return report_error(
        "--recalibrate-bn re-estimates a fine-tuned base's batch-norm statistics: it needs "
        "--fine-tune");
  }
  if (!(a.validation_split >= 0 && a.validation_split < 1)) {
    return report_error("--validation-split must be in [0, 1)");
  }
  auto kind = optimizer_kind_from_name(a.optimizer);
  if (!kind.ok()) return fail(kind.status());

  LoadOptions load_options;
  load_options.prepare_training = a.fine_tune;
  auto model = Model::load(a.model, load_options);
  if (!model.ok()) return fail(model.status());
  // As hub.KerasLayer(signature=...): a model without __call__ (Keras 3's model.export(), TF1
  // SavedModels) is called through a signature, serving_default unless --signature names one.
  std::string signature = a.signature;
  if (signature.empty() && !model->has_call()) {
    signature = model->default_signature();
    if (!signature.empty()) {
      std::fprintf(stderr, "%s has no __call__: the hub layer calls signature '%s'\n",
                   a.model.c_str(), signature.c_str());
    }
  }

  int64_t h = 0, w = 0;
  if (!a.image_size.empty()) {
    auto size = parse_image_size(a.image_size);
    if (!size.ok()) return fail(size.status());
    std::tie(h, w) = *size;
  } else {
    const auto specs = signature.empty() ? inputs_without_defaults(model->call_input_specs())
                                         : model->signature_input_specs(signature);
    if (specs.size() == 1 && !specs[0].shape.unknown_rank && specs[0].shape.dims.size() == 4 &&
        specs[0].shape.dims[1] > 0 && specs[0].shape.dims[2] > 0) {
      h = specs[0].shape.dims[1];
      w = specs[0].shape.dims[2];
    } else {
      h = w = 224;  // make_image_classifier's default for models without a fixed size
    }
  }

  auto train_data = ImageDataset::open(a.data, "train");
  if (!train_data.ok()) return fail(train_data.status());
  auto data = std::make_shared<const ImageDataset>(std::move(train_data).value());
  auto [train_examples, val_examples] = data->split(a.validation_split, a.max_examples);
  if (train_examples.empty()) return report_error(a.data + ": no training examples");
  std::shared_ptr<const ImageDataset> test_data;
  Split test;
  if (!a.test.empty()) {
    auto t = ImageDataset::open(a.test, "t10k");
    if (!t.ok()) return fail(t.status());
    if (t->class_names() != data->class_names()) {
      return report_error(a.test + ": its classes differ from the training data's");
    }
    test_data = std::make_shared<const ImageDataset>(std::move(t).value());
    const int64_t n = a.max_test_examples >= 0 ? std::min(a.max_test_examples, test_data->size())
                                               : test_data->size();
    for (int64_t i = 0; i < n; ++i) test.examples.push_back(i);
  }
  // The names labels.txt, the confusion matrix and the published model carry: DATA's (IDX label
  // numbers or class folder names) unless --class-names gives them.
  std::vector<std::string> class_names = data->class_names();
  if (!a.class_names.empty()) {
    auto names = read_labels(a.class_names);
    if (!names.ok()) return fail(names.status().with_context("--class-names"));
    if (static_cast<int64_t>(names->size()) != data->num_classes()) {
      return report_error(a.class_names + ": " + std::to_string(names->size()) + " class names, " +
                          a.data + " has " + std::to_string(data->num_classes()) + " classes");
    }
    for (size_t c = 0; c < names->size(); ++c) {
      if ((*names)[c].empty()) {
        return report_error(a.class_names + ": line " + std::to_string(c + 1) +
                            " is empty (one class name per line, in label order)");
      }
    }
    class_names = std::move(names).value();
  }
  std::fprintf(stderr, "%s: %zu training, %zu validation images, %lld classes, %lldx%lld%s\n",
               a.data.c_str(), train_examples.size(), val_examples.size(),
               static_cast<long long>(data->num_classes()), static_cast<long long>(h),
               static_cast<long long>(w), test_data ? "" : " (no test set)");

  ClassifierOptions co;
  co.hub.trainable = a.fine_tune;
  co.hub.output_key = a.output_key;
  co.hub.signature = signature;
  if (a.batch_norm_momentum) {
    co.hub.arguments["batch_norm_momentum"] =
        Tensor::scalar<float>(static_cast<float>(*a.batch_norm_momentum));
  }
  co.num_classes = data->num_classes();
  co.image_height = h;
  co.image_width = w;
  co.dropout_rate = a.dropout;
  co.l2 = a.l2;
  co.label_smoothing = a.label_smoothing;
  co.seed = a.seed;
  co.optimizer = OptimizerOptions::keras_defaults(*kind);
  if (*kind == OptimizerKind::kSgd) co.optimizer.momentum = a.momentum;
  if (*kind == OptimizerKind::kAdamW) co.optimizer.weight_decay = a.weight_decay;
  const int64_t steps_per_epoch =
      (static_cast<int64_t>(train_examples.size()) + a.batch_size - 1) / a.batch_size;
  if (a.lr_schedule == "constant") {
    co.optimizer.learning_rate = LearningRateSchedule::constant(a.learning_rate);
  } else if (a.lr_schedule == "exponential") {
    co.optimizer.learning_rate =
        LearningRateSchedule::exponential_decay(a.learning_rate, steps_per_epoch, a.decay_rate);
  } else if (a.lr_schedule == "cosine") {
    co.optimizer.learning_rate =
        LearningRateSchedule::cosine_decay(a.learning_rate, steps_per_epoch * a.epochs);
  } else {
    return report_error("--lr-schedule: constant, exponential or cosine, got '" + a.lr_schedule +
                        "'");
  }
  auto created = ImageClassifier::create(std::move(model).value(), co);
  if (!created.ok()) return fail(created.status().with_context(a.model));
  ImageClassifier& classifier = *created;

  const fs::path work = a.work_dir.empty() ? fs::path(a.output + ".train") : fs::path(a.work_dir);
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) return report_error(work.string() + ": " + ec.message());
  const fs::path checkpoint = work / "checkpoint.bin";
  std::string labels_text;
  for (const auto& name : class_names) labels_text += name + "\n";
  if (Status s = write_text(work / "labels.txt", labels_text); !s.ok()) return fail(s);

  const auto fingerprint =
      run_fingerprint(a, data->num_classes(), static_cast<int64_t>(train_examples.size()));
  int start_epoch = 0;
  BestEpoch best;
  if (a.resume && fs::exists(checkpoint)) {
    auto saved = train::read_checkpoint(checkpoint);
    if (!saved.ok()) return fail(saved.status());
    for (const auto& [key, value] : fingerprint) {
      auto it = saved->find(key);
      if (it == saved->end() || it->second.dtype() != DType::kInt64 ||
          it->second.data<int64_t>()[0] != value.data<int64_t>()[0]) {
        return report_error(checkpoint.string() + ": written by a run with a different " +
                            key.substr(5) + "; cannot resume it with these settings");
      }
    }
    std::map<std::string, Tensor> opt_state;
    for (Variable* v : classifier.checkpoint_variables()) {
      const Tensor* value = matching_value(*saved, "var/" + v->name(), *v);
      if (!value) {
        return report_error(checkpoint.string() + ": no matching value for variable '" + v->name() +
                            "'");
      }
      v->assign(*value);
    }
    for (const auto& [key, value] : *saved) {
      if (key.starts_with("opt/")) opt_state[key.substr(4)] = value;
    }
    if (Status s = classifier.optimizer().restore(classifier.trainable_variables(), opt_state);
        !s.ok()) {
      return fail(s.with_context(checkpoint.string()));
    }
    start_epoch = static_cast<int>(saved->at("meta/epoch").data<int64_t>()[0]);
    if (a.keep_best) {
      if (Status s = best.restore(*saved, classifier.checkpoint_variables()); !s.ok()) {
        return fail(s.with_context(checkpoint.string()));
      }
    }
    std::fprintf(stderr, "resuming after epoch %d from %s\n", start_epoch,
                 checkpoint.string().c_str());
  } else if (a.resume) {
    std::fprintf(stderr, "no checkpoint at %s: starting from the beginning\n",
                 checkpoint.string().c_str());
  }

  std::ofstream log;
  if (!a.log.empty()) {
    log.open(a.log, start_epoch > 0 ? std::ios::app : std::ios::trunc);
    if (!log) return report_error(a.log + ": cannot write");
  }

  Split train_split{train_examples, {}}, val_split{val_examples, {}};
  const bool cached = !a.fine_tune && !a.augment;
  if (cached) {
    for (auto [split, what, source] :
         {std::tuple{&train_split, "training", data}, std::tuple{&val_split, "validation", data},
          std::tuple{&test, "test", test_data}}) {
      if (split->examples.empty() || !source) continue;
      if (Status s = cache_features(classifier, source, *split, a, h, w, what); !s.ok()) {
        return fail(s);
      }
    }
  }

  g_interrupted.store(false);
  std::signal(SIGINT, on_sigint);
  Augmentation aug;
  aug.enabled = a.augment;
  std::set<std::string> reported;
  EvalTotals val;
  for (int epoch = start_epoch; epoch < a.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    const std::vector<int64_t> order =
        shuffled_order(static_cast<int64_t>(train_split.examples.size()), a.seed, epoch);
    double loss_sum = 0, correct = 0;
    int64_t seen = 0, done = 0;
    Progress progress(epoch + 1, a.epochs, steps_per_epoch);
    auto account = [&](const StepMetrics& m, int64_t b) {
      loss_sum += m.loss * static_cast<double>(b);
      correct += m.accuracy * static_cast<double>(b);
      seen += b;
      progress.update(++done, seen, loss_sum / static_cast<double>(seen),
                      correct / static_cast<double>(seen));
    };
    if (cached) {
      const auto n = static_cast<int64_t>(order.size());
      for (int64_t begin = 0; begin < n && !g_interrupted.load(); begin += a.batch_size) {
        const int64_t end = std::min<int64_t>(n, begin + a.batch_size);
        std::vector<int64_t> rows(order.begin() + begin, order.begin() + end);
        Tensor labels(DType::kInt64, {end - begin});
        for (int64_t k = 0; k < end - begin; ++k) {
          labels.mutable_data<int64_t>()[k] =
              data->label(train_split.examples[static_cast<size_t>(rows[static_cast<size_t>(k)])]);
        }
        auto m = classifier.train_step_on_features(gather_rows(train_split.features, rows), labels);
        if (!m.ok()) return fail(m.status());
        account(*m, end - begin);
      }
    } else {
      std::vector<int64_t> examples;
      for (int64_t k : order) examples.push_back(train_split.examples[static_cast<size_t>(k)]);
      BatchStream::Options o;
      o.batch_size = a.batch_size;
      o.height = h;
      o.width = w;
      o.augmentation = aug;
      o.seed = a.seed;
      o.epoch = epoch;
      o.prefetch = a.prefetch;
      BatchStream stream(data, examples, o);
      while (!g_interrupted.load()) {
        auto batch = stream.next();
        if (!batch.ok()) return fail(batch.status());
        if (!*batch) break;
        auto m = classifier.train_step((*batch)->images, (*batch)->labels);
        if (!m.ok()) return fail(m.status());
        account(*m, (*batch)->labels.num_elements());
      }
      for (const auto& warning : stream.warnings()) {
        if (reported.insert(warning).second) std::fprintf(stderr, "warning: %s\n", warning.c_str());
      }
    }
    progress.finish();
    if (g_interrupted.load()) {
      if (epoch == 0) {
        std::fprintf(stderr, "interrupted during epoch 1: no epoch completed, nothing to resume\n");
      } else {
        std::fprintf(stderr,
                     "interrupted during epoch %d: the checkpoint of epoch %d is kept in %s; "
                     "continue with --resume\n",
                     epoch + 1, epoch, checkpoint.string().c_str());
      }
      return 130;
    }
    nlohmann::ordered_json line;
    line["epoch"] = epoch + 1;
    line["loss"] = seen ? loss_sum / static_cast<double>(seen) : 0.0;
    line["accuracy"] = seen ? correct / static_cast<double>(seen) : 0.0;
    if (!val_split.examples.empty()) {
      auto v = evaluate_split(classifier, data, val_split, a, h, w);
      if (!v.ok()) return fail(v.status());
      val = std::move(v).value();
      line["val_loss"] = val.loss;
      line["val_accuracy"] = val.accuracy();
      if (a.keep_best) best.offer(epoch + 1, val.accuracy(), classifier.checkpoint_variables());
    }
    line["seconds"] = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    std::fprintf(stderr, "epoch %d/%d: %s\n", epoch + 1, a.epochs, line.dump().c_str());
    if (log.is_open()) {
      log << line.dump() << "\n";
      log.flush();
    }
    std::map<std::string, Tensor> state = fingerprint;
    state["meta/epoch"] = Tensor::scalar<int64_t>(epoch + 1);
    for (Variable* v : classifier.checkpoint_variables()) state["var/" + v->name()] = v->value();
    for (auto& [key, value] : classifier.optimizer().state(classifier.trainable_variables())) {
      state["opt/" + key] = std::move(value);
    }
    if (a.keep_best) best.save(state);
    if (Status s = train::write_checkpoint(checkpoint, state); !s.ok()) return fail(s);
  }
  std::signal(SIGINT, SIG_DFL);

  if (a.keep_best && best.epoch == 0) {
    std::fprintf(stderr,
                 "warning: --keep-best: no validation images, the last epoch's weights "
                 "are kept\n");
  } else if (a.keep_best && best.epoch != a.epochs) {
    best.assign_to(classifier.checkpoint_variables());
    val = {};  // evaluated again below, with the restored weights
    std::printf("restored the weights of epoch %d (best validation accuracy %.4f)\n", best.epoch,
                best.accuracy);
  }
  if (a.recalibrate_bn > 0) {
    // The first N batches of a shuffle no training epoch used, without augmentation.
    const std::vector<int64_t> order =
        shuffled_order(static_cast<int64_t>(train_split.examples.size()), a.seed, -1);
    std::vector<int64_t> examples;
    for (int64_t k : order) {
      if (static_cast<int64_t>(examples.size()) >= a.recalibrate_bn * a.batch_size) break;
      examples.push_back(train_split.examples[static_cast<size_t>(k)]);
    }
    BatchStream::Options o;
    o.batch_size = a.batch_size;
    o.height = h;
    o.width = w;
    o.prefetch = a.prefetch;
    BatchStream stream(data, examples, o);
    int64_t k = 0;
    for (;; ++k) {
      auto batch = stream.next();
      if (!batch.ok()) return fail(batch.status());
      if (!*batch) break;
      if (Status s = classifier.update_batch_norm_statistics((*batch)->images, k); !s.ok())
        return fail(s);
    }
    std::printf("re-estimated the batch-norm statistics over %lld training batches\n",
                static_cast<long long>(k));
    val = {};  // evaluated again below, with the new statistics
  }
  if (!val_split.examples.empty()) {
    if (val.count == 0) {
      auto v = evaluate_split(classifier, data, val_split, a, h, w);
      if (!v.ok()) return fail(v.status());
      val = std::move(v).value();
    }
    std::printf("validation: accuracy %.4f, top-5 %.4f, loss %.4f (%lld images)\n", val.accuracy(),
                val.top5, val.loss, static_cast<long long>(val.count));
  }
  const EvalTotals* report = val.count ? &val : nullptr;
  EvalTotals test_totals;
  if (test_data) {
    auto t = evaluate_split(classifier, test_data, test, a, h, w);
    if (!t.ok()) return fail(t.status());
    test_totals = std::move(t).value();
    std::printf("test: accuracy %.4f, top-5 %.4f, loss %.4f (%lld images)\n",
                test_totals.accuracy(), test_totals.top5, test_totals.loss,
                static_cast<long long>(test_totals.count));
    if (log.is_open()) {
      nlohmann::ordered_json line;
      line["test_accuracy"] = test_totals.accuracy();
      line["test_top5_accuracy"] = test_totals.top5;
      line["test_loss"] = test_totals.loss;
      if (a.keep_best) line["restored_epoch"] = best.epoch;
      log << line.dump() << "\n";
      log.flush();
    }
    report = &test_totals;
  }
  if (report) {
    const std::string matrix = confusion_text(*report, class_names);
    std::printf("confusion matrix (%s; rows: true class, columns: predicted):\n%s",
                test_data ? "test" : "validation", matrix.c_str());
    if (Status s = write_text(work / "confusion_matrix.tsv", matrix); !s.ok()) return fail(s);
  }

  // A SavedModel already at OUT (an earlier run's, e.g. before --resume) is replaced, but only
  // once the new one is written: it is moved aside and put back if publishing fails. Any other
  // non-empty OUT is refused by publish_classifier.
  const std::filesystem::path out_dir(a.output);
  std::filesystem::path previous;
  if (std::filesystem::is_regular_file(out_dir / "saved_model.pb", ec)) {
    previous = out_dir;
    previous += ".previous-" + std::to_string(::getpid());
    std::filesystem::rename(out_dir, previous, ec);
    if (ec) {
      return report_error(a.output + ": cannot move the earlier model aside: " + ec.message() +
                          " (the trained weights are in " + checkpoint.string() + ")");
    }
  }
  if (Status s = classifier.publish(a.output, class_names); !s.ok()) {
    if (!previous.empty()) std::filesystem::rename(previous, out_dir, ec);
    return report_error(s.to_string() + " (the trained weights are in " + checkpoint.string() +
                        ")");
  }
  if (!previous.empty()) std::filesystem::remove_all(previous, ec);
  std::printf("published the classifier to %s\n", a.output.c_str());
  return 0;
}

}  // namespace

void add_retrain_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<RetrainArgs>();
  auto* cmd = app.add_subcommand(
      "retrain",
      "Train a classifier on top of a hub image model (make_image_classifier): checkpoint per "
      "epoch, JSONL log, test accuracy and confusion matrix, the classifier published to OUT");
  cmd->add_option("MODEL", a->model, std::string("The hub model: ") + kModelArgumentHelp)
      ->required();
  cmd->add_option("DATA", a->data,
                  "An image folder (one subfolder per class) or a folder of IDX files "
                  "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])")
      ->required();
  cmd->add_option("--output", a->output, "Where the classifier SavedModel goes")->required();
  cmd->add_option("--test", a->test,
                  "Test data: an image folder, or an IDX folder (its t10k-* pair)");
  cmd->add_option("--log", a->log, "One JSON object per epoch (and the test accuracy) here");
  cmd->add_option("--work-dir", a->work_dir,
                  "Checkpoint, labels.txt and confusion_matrix.tsv (default: OUT.train)");
  cmd->add_option("--class-names", a->class_names,
                  "A file with one class name per line, in label order, used instead of DATA's "
                  "names (IDX label numbers, class folder names) in labels.txt, the confusion "
                  "matrix and the published model");
  cmd->add_option("--epochs", a->epochs, "Passes over the training data")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size)->capture_default_str();
  cmd->add_option("--learning-rate", a->learning_rate)->capture_default_str();
  cmd->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--dropout", a->dropout, "Dropout rate before the head")->capture_default_str();
  cmd->add_option("--l2", a->l2, "L2 factor on the head's kernel")->capture_default_str();
  cmd->add_option("--label-smoothing", a->label_smoothing)->capture_default_str();
  cmd->add_option("--validation-split", a->validation_split,
                  "Fraction of each class held out for validation")
      ->capture_default_str();
  cmd->add_flag("--fine-tune", a->fine_tune, "Train the hub model's variables too");
  cmd->add_flag("--augment", a->augment,
                "Random rotation, shifts, shear, zoom and horizontal flips (as "
                "make_image_classifier --do_data_augmentation)");
  cmd->add_option("--image-size", a->image_size,
                  "HxW the images are resized to (default: the model's input size, else 224x224)");
  cmd->add_option("--optimizer", a->optimizer, "sgd, adam, adamw or rmsprop")
      ->capture_default_str();
  cmd->add_option("--lr-schedule", a->lr_schedule,
                  "constant, exponential (times --decay-rate per epoch) or cosine (to 0 over the "
                  "run)")
      ->capture_default_str();
  cmd->add_option("--decay-rate", a->decay_rate, "Per-epoch factor of --lr-schedule exponential")
      ->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay, "AdamW's weight decay")->capture_default_str();
  cmd->add_option("--batch-norm-momentum", a->batch_norm_momentum,
                  "Passed to the hub model's __call__ as batch_norm_momentum");
  cmd->add_option("--output-key", a->output_key,
                  "The hub model output to use when it returns a dict");
  cmd->add_option("--signature", a->signature,
                  "Call this signature of the hub model instead of __call__ (default: "
                  "serving_default when the model has no __call__); not with --fine-tune");
  cmd->add_option("--seed", a->seed,
                  "Seeds the head's initialization, shuffling, dropout and "
                  "augmentation")
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume,
                "Continue from the checkpoint in the work directory (same settings)");
  cmd->add_option("--recalibrate-bn", a->recalibrate_bn,
                  "After training, set the fine-tuned base's batch-norm moving statistics to "
                  "their mean over N training batches run with the final weights (PreciseBN; "
                  "0: off, as in Keras)")
      ->capture_default_str();
  cmd->add_flag("--keep-best", a->keep_best,
                "Publish (and test) the weights of the epoch with the best validation accuracy "
                "instead of the last epoch's (Keras' restore_best_weights)");
  cmd->add_option("--max-examples", a->max_examples,
                  "Use only the first N examples of DATA (before the validation split)");
  cmd->add_option("--max-test-examples", a->max_test_examples,
                  "Use only the first N examples of the test data");
  cmd->add_option("--prefetch", a->prefetch, "Batches decoded ahead of the training step")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([a, &exit_code] { exit_code = retrain(*a); });
}

}  // namespace hubimg::cli
