// `hubimg retrain` end to end: the log, checkpoint, labels and confusion matrix; the published
// classifier; resuming reproduces an uninterrupted run bit for
// bit; a slice of Fashion-MNIST is learned.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hubimg/image.h"
#include "hubimg/model.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg {
namespace {
namespace fs = std::filesystem;

fs::path write_base(const fs::path& dir, int64_t size) {
  zoo::ZooOptions o;
  o.seed = 5;
  o.input_size = size;
  o.feature_vector = true;
  auto written = zoo::write_zoo_model("tiny_cnn", dir / "base", o);
  EXPECT_TRUE(written.ok()) << written.status().to_string();
  return dir / "base";
}

// Three classes of 12 PNGs each: a bright square in a class-specific corner on noise, and one
// corrupt file.
fs::path write_folder(const fs::path& dir) {
  const fs::path data = dir / "images";
  const char* classes[] = {"left", "middle", "right"};
  uint32_t s = 9;
  for (int c = 0; c < 3; ++c) {
    fs::create_directories(data / classes[c]);
    for (int i = 0; i < 12; ++i) {
      Tensor t(DType::kFloat32, {12, 12, 3});
      float* p = t.mutable_data<float>();
      for (int64_t k = 0; k < t.num_elements(); ++k) {
        s = s * 1664525u + 1013904223u;
        p[k] = 0.3f * static_cast<float>(s >> 8) / static_cast<float>(1 << 24);
      }
      for (int r = 3; r < 9; ++r)
        for (int col = 4 * c; col < 4 * c + 4; ++col)
          for (int ch = 0; ch < 3; ++ch) p[(r * 12 + col) * 3 + ch] = 1.0f;
      EXPECT_TRUE(write_png(data / classes[c] / ("img" + std::to_string(i) + ".png"), t).ok());
    }
  }
  testing::write_file(data / "middle" / "broken.png", "\x89PNG\r\n\x1a\n truncated");
  return data;
}

std::vector<nlohmann::json> read_log(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

void expect_trained(const testing::CommandResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("published the classifier"), std::string::npos) << r.out;
}

std::string cli() {
  return testing::cli_path().string();
}

TEST(RetrainCli, FrozenBaseOnAnImageFolder) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const fs::path out = dir.path() / "out";
  auto r = testing::run_command(cli() + " retrain " + base.string() + " " + data.string() +
                                " --output " + out.string() + " --log " +
                                (dir.path() / "log.jsonl").string() +
                                " --epochs 3 --batch-size 8 --optimizer adam --learning-rate "
                                "0.05 --validation-split 0.25 --dropout 0 --seed 2");
  expect_trained(r);
  EXPECT_NE(r.out.find("broken.png"), std::string::npos) << r.out;   // skipped with a warning
  EXPECT_NE(r.out.find("features of"), std::string::npos) << r.out;  // cached, frozen base
  const auto log = read_log(dir.path() / "log.jsonl");
  ASSERT_EQ(log.size(), 3u);
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(log[static_cast<size_t>(e)]["epoch"], e + 1);
    for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}) {
      EXPECT_TRUE(log[static_cast<size_t>(e)].contains(key)) << key;
    }
  }
  EXPECT_LT(log[2]["loss"].get<double>(), log[0]["loss"].get<double>());
  EXPECT_EQ(testing::read_file(out.string() + ".train/labels.txt"), "left\nmiddle\nright\n");
  EXPECT_TRUE(fs::exists(out.string() + ".train/checkpoint.bin"));
  const std::string matrix = testing::read_file(out.string() + ".train/confusion_matrix.tsv");
  EXPECT_EQ(std::count(matrix.begin(), matrix.end(), '\n'), 4) << matrix;

  // The published classifier: serving_default gives probabilities over the three classes, and
  // the labels travel with it.
  auto model = Model::load(out);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  Tensor images(DType::kFloat32, {2, 16, 16, 3});
  for (int64_t i = 0; i < images.num_elements(); ++i) {
    images.mutable_data<float>()[i] = static_cast<float>(i % 7) / 7.0f;
  }
  auto probs = model->call_signature("serving_default", {{"inputs", images}});
  ASSERT_TRUE(probs.ok()) << probs.status().to_string();
  ASSERT_EQ(probs->size(), 1u);
  const Tensor& p = probs->begin()->second;
  ASSERT_EQ(p.shape(), (Dims{2, 3}));
  for (int row = 0; row < 2; ++row) {
    float sum = 0;
    for (int c = 0; c < 3; ++c) sum += p.data<float>()[row * 3 + c];
    EXPECT_NEAR(sum, 1.0f, 1e-5);
  }
  EXPECT_EQ(testing::read_file(out / "assets" / "labels.txt"), "left\nmiddle\nright\n");
}

// --signature: the hub layer calls a signature (hub.KerasLayer(signature=...)); it is frozen, so
// --fine-tune with it is refused before anything is written.
TEST(RetrainCli, SignatureAsTheHubLayer) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --epochs 2 --batch-size 8 --seed 2 --signature serving_default";
  auto r = testing::run_command(common + " --output " + (dir.path() / "out").string());
  expect_trained(r);
  EXPECT_NE(r.out.find("features of"), std::string::npos) << r.out;  // frozen: cached
  auto model = Model::load(dir.path() / "out");
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_TRUE(model->has_call());
  auto refused =
      testing::run_command(common + " --fine-tune --output " + (dir.path() / "ft").string());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("cannot be trainable"), std::string::npos) << refused.out;
  EXPECT_FALSE(fs::exists(dir.path() / "ft"));
  EXPECT_FALSE(fs::exists(dir.path() / "ft.train"));
}

// A model without __call__ is called through serving_default: a Keras 3 export and a TF1 graph
// (Teachable Machine's) retrain and publish.
TEST(RetrainCli, ModelsWithoutCallUseServingDefault) {
  HUBIMG_REQUIRE_SHARED();
  testing::TempDir dir;
  const fs::path data = write_folder(dir.path());
  const auto keras3 = testing::real_fixture("intel_cnn_keras3_tf218/saved_model");
  auto r =
      testing::run_command(cli() + " retrain " + keras3.string() + " " + data.string() +
                           " --epochs 1 --batch-size 8 --output " + (dir.path() / "out").string());
  expect_trained(r);
  EXPECT_NE(r.out.find("has no __call__: the hub layer calls signature 'serving_default'"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("150x150"), std::string::npos) << r.out;  // the signature's input size
  auto model = Model::load(dir.path() / "out");
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto out = (*model)(Tensor(DType::kFloat32, {1, 150, 150, 3}));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].shape(), (Dims{1, 3}));

  const auto tf1 = testing::real_fixture("tm_mobilenetv2_035_tf115/saved_model");
  auto tf1_run = testing::run_command(cli() + " retrain " + tf1.string() + " " + data.string() +
                                      " --epochs 1 --output " + (dir.path() / "tf1").string());
  expect_trained(tf1_run);
  auto tf1_model = Model::load(dir.path() / "tf1");
  ASSERT_TRUE(tf1_model.ok()) << tf1_model.status().to_string();
  auto tf1_out = (*tf1_model)(Tensor(DType::kFloat32, {1, 224, 224, 3}));
  ASSERT_TRUE(tf1_out.ok()) << tf1_out.status().to_string();
  EXPECT_EQ((*tf1_out)[0].shape(), (Dims{1, 3}));
}

// --recalibrate-bn N: after training, the fine-tuned base's batch-norm statistics become the
// mean over N training batches; the published model carries them. Needs --fine-tune.
TEST(RetrainCli, RecalibrateBnChangesOnlyTheMovingStatistics) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --epochs 1 --batch-size 8 --seed 2 --fine-tune";
  auto plain = testing::run_command(common + " --output " + (dir.path() / "plain").string());
  expect_trained(plain);
  auto recalibrated = testing::run_command(common + " --recalibrate-bn 2 --output " +
                                           (dir.path() / "recalibrated").string());
  expect_trained(recalibrated);
  EXPECT_NE(recalibrated.out.find("re-estimated the batch-norm statistics over 2 training batches"),
            std::string::npos)
      << recalibrated.out;
  auto p = Model::load(dir.path() / "plain");
  auto r = Model::load(dir.path() / "recalibrated");
  ASSERT_TRUE(p.ok() && r.ok());
  const auto pv = p->variables(), rv = r->variables();
  ASSERT_EQ(pv.size(), rv.size());
  int moving_changed = 0;
  for (size_t i = 0; i < pv.size(); ++i) {
    ASSERT_EQ(pv[i]->name(), rv[i]->name());
    const auto a = pv[i]->value().values<float>(), b = rv[i]->value().values<float>();
    const bool same = std::equal(a.begin(), a.end(), b.begin(), b.end());
    if (pv[i]->name().find("moving_") != std::string::npos) {
      moving_changed += same ? 0 : 1;
    } else {
      EXPECT_TRUE(same) << pv[i]->name();
    }
  }
  EXPECT_GT(moving_changed, 0);
  auto refused =
      testing::run_command(cli() + " retrain " + base.string() + " " + data.string() +
                           " --recalibrate-bn 2 --output " + (dir.path() / "frozen").string());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("needs --fine-tune"), std::string::npos) << refused.out;
}

// --class-names replaces the data's class names in labels.txt, the confusion matrix and the
// published model; a file with the wrong number of names, or an empty one, is refused.
TEST(RetrainCli, ClassNamesFileNamesTheClasses) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const fs::path out = dir.path() / "out", names = dir.path() / "names.txt";
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --epochs 1 --batch-size 8 --seed 2 --output " + out.string() +
                             " --class-names " + names.string();
  testing::write_file(names, "West side\r\nCentre/middle\nEast\n");
  expect_trained(testing::run_command(common));
  EXPECT_EQ(testing::read_file(out.string() + ".train/labels.txt"),
            "West side\nCentre/middle\nEast\n");
  EXPECT_EQ(testing::read_file(out / "assets" / "labels.txt"), "West side\nCentre/middle\nEast\n");
  const std::string matrix = testing::read_file(out.string() + ".train/confusion_matrix.tsv");
  EXPECT_EQ(matrix.substr(0, matrix.find('\n')), "true\\predicted\tWest side\tCentre/middle\tEast");
  EXPECT_NE(matrix.find("\nEast\t"), std::string::npos) << matrix;

  testing::write_file(names, "a\nb\n");
  auto two = testing::run_command(common);
  EXPECT_EQ(two.exit_code, 1);
  EXPECT_NE(two.out.find("2 class names"), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("has 3 classes"), std::string::npos) << two.out;
  testing::write_file(names, "a\n\nc\n");
  auto empty = testing::run_command(common);
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.out.find("line 2 is empty"), std::string::npos) << empty.out;
  auto missing = testing::run_command(cli() + " retrain " + base.string() + " " + data.string() +
                                      " --epochs 1 --output " + (dir.path() / "o2").string() +
                                      " --class-names " + (dir.path() / "absent.txt").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("absent.txt"), std::string::npos) << missing.out;
}

TEST(RetrainCli, ResumeEndsWithTheSameWeightsAsAnUninterruptedRun) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --fine-tune --augment --batch-size 8 --optimizer adam "
                             "--learning-rate 0.01 --seed 4 ";
  const fs::path full = dir.path() / "full", split = dir.path() / "split";
  expect_trained(testing::run_command(common + "--epochs 3 --output " + full.string() + " --log " +
                                      (dir.path() / "full.jsonl").string()));
  expect_trained(testing::run_command(common + "--epochs 2 --output " + split.string() + " --log " +
                                      (dir.path() / "split.jsonl").string()));
  auto resumed = testing::run_command(common + "--epochs 3 --resume --output " + split.string() +
                                      " --log " + (dir.path() / "split.jsonl").string());
  expect_trained(resumed);
  EXPECT_NE(resumed.out.find("resuming after epoch 2"), std::string::npos) << resumed.out;
  const std::string a = testing::read_file(full.string() + ".train/checkpoint.bin");
  const std::string b = testing::read_file(split.string() + ".train/checkpoint.bin");
  ASSERT_GT(a.size(), 1000u);
  EXPECT_TRUE(a == b) << "the resumed run's checkpoint differs from the uninterrupted run's";
  const auto la = read_log(dir.path() / "full.jsonl");
  const auto lb = read_log(dir.path() / "split.jsonl");
  ASSERT_EQ(la.size(), 3u);
  ASSERT_EQ(lb.size(), 3u);
  EXPECT_EQ(la[2]["loss"], lb[2]["loss"]);
  EXPECT_EQ(la[2]["val_accuracy"], lb[2]["val_accuracy"]);
  // A checkpoint from other settings is refused.
  auto other = testing::run_command(cli() + " retrain " + base.string() + " " + data.string() +
                                    " --fine-tune --batch-size 8 --seed 4 --epochs 3 --resume "
                                    "--output " +
                                    split.string());
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.out.find("cannot resume"), std::string::npos) << other.out;
}

// --keep-best publishes the weights of the first epoch with the highest validation accuracy:
// training is deterministic, so they equal what a run stopped after that epoch publishes. The
// best weights travel in the checkpoint, so a resumed run keeps the same choice.
TEST(RetrainCli, KeepBestPublishesTheBestEpochsWeights) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --fine-tune --batch-size 8 --optimizer adam --learning-rate 0.05 "
                             "--validation-split 0.25 --seed 3 ";
  const fs::path best = dir.path() / "best";
  auto r = testing::run_command(common + "--epochs 5 --keep-best --output " + best.string() +
                                " --log " + (dir.path() / "best.jsonl").string());
  expect_trained(r);
  const auto log = read_log(dir.path() / "best.jsonl");
  ASSERT_EQ(log.size(), 5u);
  int best_epoch = 0;
  double best_accuracy = -1;
  for (const auto& line : log) {
    if (line["val_accuracy"].get<double>() > best_accuracy) {
      best_accuracy = line["val_accuracy"].get<double>();
      best_epoch = line["epoch"].get<int>();
    }
  }
  // The settings are chosen so that the best epoch is not the last (the case that matters).
  ASSERT_LT(best_epoch, 5) << r.out;
  EXPECT_NE(r.out.find("restored the weights of epoch " + std::to_string(best_epoch)),
            std::string::npos)
      << r.out;
  char expected[64];
  std::snprintf(expected, sizeof expected, "validation: accuracy %.4f", best_accuracy);
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;

  const fs::path stopped = dir.path() / "stopped";
  expect_trained(testing::run_command(common + "--epochs " + std::to_string(best_epoch) +
                                      " --output " + stopped.string()));
  auto a = Model::load(best);
  auto b = Model::load(stopped);
  ASSERT_TRUE(a.ok() && b.ok());
  const auto va = a->variables(), vb = b->variables();
  ASSERT_EQ(va.size(), vb.size());
  ASSERT_GT(va.size(), 10u);  // the fine-tuned base's variables and the head
  for (size_t i = 0; i < va.size(); ++i) {
    ASSERT_EQ(va[i]->name(), vb[i]->name());
    const Tensor &x = va[i]->value(), &y = vb[i]->value();
    ASSERT_EQ(x.byte_size(), y.byte_size()) << va[i]->name();
    EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.byte_size()), 0) << va[i]->name();
  }

  // Interrupted after epoch 2 and resumed: the same checkpoint, best weights included.
  const fs::path split = dir.path() / "split";
  expect_trained(
      testing::run_command(common + "--epochs 2 --keep-best --output " + split.string()));
  expect_trained(
      testing::run_command(common + "--epochs 5 --keep-best --resume --output " + split.string()));
  EXPECT_TRUE(testing::read_file(best.string() + ".train/checkpoint.bin") ==
              testing::read_file(split.string() + ".train/checkpoint.bin"));

  auto refused = testing::run_command(cli() + " retrain " + base.string() + " " + data.string() +
                                      " --keep-best --validation-split 0 --output " +
                                      (dir.path() / "x").string());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("--keep-best"), std::string::npos) << refused.out;
  EXPECT_FALSE(fs::exists(dir.path() / "x"));

  // A split too small to leave any validation image (int(0.01 * 12) = 0 per class): the last
  // epoch's weights, with a warning, and a resumable checkpoint.
  const std::string tiny_split = cli() + " retrain " + base.string() + " " + data.string() +
                                 " --keep-best --validation-split 0.01 --batch-size 8 --output " +
                                 (dir.path() / "y").string();
  auto unvalidated = testing::run_command(tiny_split + " --epochs 1");
  expect_trained(unvalidated);
  EXPECT_NE(unvalidated.out.find("no validation images"), std::string::npos) << unvalidated.out;
  expect_trained(testing::run_command(tiny_split + " --epochs 2 --resume"));
}

// Ctrl-C: the step in flight finishes, no partial checkpoint is written, the process exits
// with 130, and the last complete checkpoint resumes.
TEST(RetrainCli, InterruptKeepsTheLastCheckpointUsable) {
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 16);
  const fs::path data = write_folder(dir.path());
  const fs::path out = dir.path() / "out", log = dir.path() / "log.jsonl";
  const std::string common = cli() + " retrain " + base.string() + " " + data.string() +
                             " --fine-tune --batch-size 4 --seed 3 --output " + out.string() +
                             " --log " + log.string();
  const std::string checkpoint = out.string() + ".train/checkpoint.bin";
  // A background job of a non-interactive shell starts with SIGINT ignored; retrain installs
  // its own handler.
  auto r = testing::run_command("(" + common + " --epochs 1000 & pid=$!; while [ ! -f " +
                                checkpoint + " ]; do sleep 0.05; done; kill -INT $pid; wait $pid;" +
                                " echo exit=$?)");
  EXPECT_NE(r.out.find("exit=130"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("continue with --resume"), std::string::npos) << r.out;
  const auto lines = read_log(log);
  ASSERT_GE(lines.size(), 1u);
  ASSERT_LT(lines.size(), 1000u);
  const size_t done = lines.size();
  auto resumed = testing::run_command(common + " --resume --epochs " + std::to_string(done + 1));
  expect_trained(resumed);
  EXPECT_NE(resumed.out.find("resuming after epoch " + std::to_string(done)), std::string::npos)
      << resumed.out;
  EXPECT_EQ(read_log(log).size(), done + 1);
}

TEST(RetrainCli, LearnsASliceOfFashionMnist) {
  const fs::path fashion = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fashion / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not installed (Debian package dataset-fashion-mnist)";
  }
  testing::TempDir dir;
  const fs::path base = write_base(dir.path(), 28);
  const fs::path log = dir.path() / "log.jsonl";
  auto r = testing::run_command(
      cli() + " retrain " + base.string() + " " + fashion.string() + " --test " + fashion.string() +
      " --fine-tune --max-examples 2000 --max-test-examples 1000 --epochs 4 " +
      "--batch-size 32 --optimizer adam --learning-rate 0.01 --label-smoothing 0 " +
      "--validation-split 0.1 --seed 1 --output " + (dir.path() / "out").string() + " --log " +
      log.string());
  expect_trained(r);
  const auto lines = read_log(log);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  const double test_accuracy = lines.back()["test_accuracy"].get<double>();
  std::printf("Fashion-MNIST slice: test accuracy %.4f\n", test_accuracy);
  // Chance is 0.1; a tiny CNN fine-tuned on 1800 images for 4 epochs gets well above it.
  EXPECT_GE(test_accuracy, 0.6) << r.out;
}

}  // namespace
}  // namespace hubimg
