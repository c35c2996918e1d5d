// Every __call__ trace of every fixture, the training=True ones included, builds: all the ops
// they use are implemented.
#include <gtest/gtest.h>

#include "hubimg/model.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

TEST(TrainingTraces, EveryFixtureTraceBuilds) {
  HUBIMG_REQUIRE_SHARED();
  for (const char* fixture :
       {"emoji_mobilenet025_gray_tf282", "mnist_cnn_tf231", "potato_cnn_aug_tf25", "rps_cnn_tf231",
        "tf_testdata/tfnet_simple_model_from_auto_compile"}) {
    SCOPED_TRACE(fixture);
    LoadOptions options;
    options.prepare_training = true;
    auto m = Model::load(hubimg::testing::real_fixture(fixture) / "saved_model", options);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    for (const auto& w : m->load_warnings()) ADD_FAILURE() << w;
  }
}

}  // namespace
}  // namespace hubimg
