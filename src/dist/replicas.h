// Keeping data-parallel replicas identical: rank 0's weights and buffers sent to the others, and a
// digest check that every rank's model is still the same tensor for tensor.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "dist/process_group.h"

namespace shrink::dist {

struct ReplicaState {
  bool parameters = true;
  // Pruning masks (buffers named *_mask) follow from the weights every rank shares; once the
  // replicas start alike they only need the digest check, not a copy every step.
  bool masks = true;
};

// The module's parameters and buffers, as `what` selects, by name.
NamedTensors replica_tensors(const torch::nn::Module& module, ReplicaState what = {});

// Every rank's `tensors` become rank 0's (a rank's list must name the same tensors in the same order).
void broadcast_from_rank0(ProcessGroup& group, const NamedTensors& tensors, const std::string& when);

// Throws core::Error naming the first tensor that differs and the ranks holding another value.
void check_replicas(ProcessGroup& group, const NamedTensors& tensors, const std::string& when);

}  // namespace shrink::dist
