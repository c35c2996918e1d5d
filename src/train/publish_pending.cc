// Placeholder until the zoo-publish branch's SavedModel writer for classifiers is merged (the
// coordinator replaces this file then).
#include "train/publish.h"

namespace hubimg::train {

Status publish_classifier(const PublishRequest& request, const std::filesystem::path& out_dir) {
  return unimplemented(out_dir.string() +
                       ": publishing a retrained model lands with the zoo-publish branch");
}

}  // namespace hubimg::train
