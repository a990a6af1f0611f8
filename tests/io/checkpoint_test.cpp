#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include "test_paths.h"

namespace dsv4::io {

TEST(Checkpoint, OpensEverySharedFixture) {
  for (const char* name : {"tiny", "tiny-c"}) {
    auto ck = Checkpoint::open(test::fixture_dir(name) + "/checkpoint");
    ASSERT_TRUE(ck.ok()) << ck.status().to_string();
    EXPECT_EQ((*ck)->tensor_count(), 427u);
    EXPECT_EQ((*ck)->config().hidden_size, 256);
    EXPECT_EQ((*ck)->tensor("layers.1.attn.indexer.wq_b.weight").dtype, DType::fp8_e4m3);
  }
}

TEST(Checkpoint, OpensTheDemoModel) {
  auto ck = Checkpoint::open(test::demo_model_dir());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->config().num_hidden_layers, 8);
}

TEST(Checkpoint, MissingDirectoryIsNotFound) {
  auto ck = Checkpoint::open("/nonexistent/dsv4");
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), StatusCode::not_found);
}

}  // namespace dsv4::io
