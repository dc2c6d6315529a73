// ExecutorCollectives.cpp - the executor's steps that need the rank: the
// collectives (mesh.*), the expert exchanges and slot moves of expert
// parallelism, and moe.local_slots. They run over the channel of their
// group of ranks (docs/design/sharding.md).
#include "runtime/core/Executor.h"
#include "runtime/core/MeshGroups.h"
#include "runtime/hal/LocalChannel.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace moec::rt {

bool Executor::isRankStep(const plan::Step &step) {
  std::string_view op = step.op()->string_view();
  return op.substr(0, 5) == "mesh." || op == "moe.local_slots" || op == "moe.expert_exchange" ||
         op == "moe.expert_return" || op == "moe.slots_to_experts" ||
         op == "moe.slots_from_experts";
}

Status Executor::prepareCollective(const plan::Step *step, int index) {
  PreparedStep prepared{step, nullptr, {}, {}};
  prepared.index = index;
  std::string where =
      plan_->path() + ": step " + std::to_string(index) + " (" + step->op()->str() + ")";
  auto find = [&](const char *name) -> const plan::Attr * {
    if (step->attrs())
      for (const plan::Attr *attr : *step->attrs())
        if (attr->name()->string_view() == name)
          return attr;
    return nullptr;
  };
  std::string_view op = step->op()->string_view();
  const unsigned arity = op == "moe.expert_exchange" ? 2 : op == "moe.expert_return" ? 2 : 1;
  const unsigned results = op == "moe.expert_exchange" ? 2 : 1;
  if (!step->inputs() || !step->outputs() || step->inputs()->size() != arity ||
      step->outputs()->size() != results)
    return Status::error(where + " needs " + std::to_string(arity) + " input(s) and " +
                         std::to_string(results) + " output(s)");
  // The group: the ranks that differ only along the mesh axes named.
  const plan::Mesh *mesh = plan_->root().mesh();
  if (!mesh || !mesh->shape())
    return Status::error(where + " is a collective, but the plan has no mesh");
  std::vector<int64_t> axes;
  if (const plan::Attr *attr = find("mesh_axes");
      attr && attr->value_as_IntsAttr() && attr->value_as_IntsAttr()->values())
    axes.assign(attr->value_as_IntsAttr()->values()->begin(),
                attr->value_as_IntsAttr()->values()->end());
  auto channel = meshGroup(*channel_, *mesh, axes);
  if (!channel)
    return Status::error(where + ": " + channel.status().message());
  prepared.channel = *channel;
  const int64_t group = prepared.channel->size();
  if (group == 1) {
    if (!self_)
      self_ = std::make_unique<hal::LocalChannel>();
    prepared.channel = self_.get();
  }
  if (group > 1 && !prepared.channel->reaches(device_->kind()))
    return Status::error(where + ": the channel cannot reach the memory of the " +
                         std::string(hal::deviceKindName(device_->kind())) + " device (" +
                         (device_->kind() == hal::DeviceKind::cuda
                              ? "GPU memory moves through moe-run --channel nccl"
                              : "host memory moves through moe-run --channel mpi") +
                         ")");
  // Every step but the plain collectives moves rows on the host.
  const bool plain = op == "mesh.all_reduce" || op == "mesh.all_gather" || op == "mesh.all_slice";
  if (!plain && device_->kind() == hal::DeviceKind::cuda)
    return Status::error(where + " runs on host memory (cpu, cuda-emu); sharded plans with it "
                                 "on a GPU are not built yet");
  const TensorRef &in = tensors_[step->inputs()->Get(0)];
  const TensorRef &out = tensors_[step->outputs()->Get(0)];
  auto axis = [&](const char *name) -> StatusOr<int64_t> {
    const plan::Attr *attr = find(name);
    if (!attr || !attr->value_as_IntAttr())
      return Status::error(where + " has no integer attribute '" + name + "'");
    return attr->value_as_IntAttr()->value();
  };
  if (op == "mesh.all_reduce") {
    const plan::Attr *kind = find("reduction");
    std::string reduction =
        kind && kind->value_as_StringAttr() && kind->value_as_StringAttr()->value()
            ? kind->value_as_StringAttr()->value()->str()
            : "sum";
    if (reduction == "sum")
      prepared.reduction = hal::Reduction::sum;
    else if (reduction == "average")
      prepared.reduction = hal::Reduction::average;
    else
      return Status::error(where + " reduces by '" + reduction +
                           "'; the runtime sums and averages");
    if (in.bytes() != out.bytes() || in.dtype != out.dtype)
      return Status::error(where + " changes its tensor's type");
    prepared.collective = PreparedStep::Collective::allReduce;
  } else if (op == "mesh.all_gather" || op == "mesh.all_slice") {
    bool gather = op == "mesh.all_gather";
    auto along = axis(gather ? "gather_axis" : "slice_axis");
    if (!along)
      return along.status();
    if (*along != 0)
      return Status::error(where + " runs along tensor axis " + std::to_string(*along) +
                           "; the runtime gathers and slices along axis 0");
    const TensorRef &whole = gather ? out : in, &part = gather ? in : out;
    if (whole.bytes() != part.bytes() * static_cast<size_t>(group))
      return Status::error(where + ": the whole tensor is not " + std::to_string(group) +
                           " times its part");
    prepared.collective =
        gather ? PreparedStep::Collective::allGather : PreparedStep::Collective::allSlice;
  } else if (op == "moe.local_slots") {
    auto tokens = axis("tokens_per_rank");
    if (!tokens)
      return tokens.status();
    if (in.dtype != DType::i32 || out.dtype != DType::i32 || in.bytes() != out.bytes())
      return Status::error(where + " maps i32 slots to i32 slots of the same shape");
    prepared.tokensPerRank = *tokens;
    prepared.collective = PreparedStep::Collective::localSlots;
  } else if (op == "mesh.all_to_all") {
    auto split = axis("split_axis"), concat = axis("concat_axis");
    if (!split)
      return split.status();
    if (!concat)
      return concat.status();
    int64_t rank = static_cast<int64_t>(in.shape.size());
    if (*split < 0 || *split >= rank || *concat < 0 || *concat >= rank ||
        in.shape[*split] % group != 0 || in.dtype != out.dtype || in.bytes() != out.bytes() ||
        out.shape[*concat] != in.shape[*concat] * (*split == *concat ? 1 : group))
      return Status::error(where + ": the pieces of " + std::to_string(group) +
                           " ranks do not fit its shapes and axes");
    prepared.splitAxis = *split;
    prepared.concatAxis = *concat;
    prepared.collective = PreparedStep::Collective::allToAll;
  } else if (op == "moe.slots_to_experts" || op == "moe.slots_from_experts") {
    bool to = op == "moe.slots_to_experts";
    const TensorRef &whole = to ? in : out, &block = to ? out : in;
    if (whole.bytes() != block.bytes() * static_cast<size_t>(group) || in.dtype != out.dtype ||
        (to && whole.dtype != DType::f32))
      return Status::error(where +
                           " moves f32 blocks of expert slots between [E, C, d] and "
                           "[E / " +
                           std::to_string(group) + ", C, d]");
    prepared.collective =
        to ? PreparedStep::Collective::slotsToExperts : PreparedStep::Collective::slotsFromExperts;
  } else if (op == "moe.expert_exchange" || op == "moe.expert_return") {
    // Rows [N, d] and, for every rank of the group, its rows per expert.
    const TensorRef &counts = tensors_[step->inputs()->Get(1)];
    const TensorRef &rows = out;
    if (counts.dtype != DType::i32 || counts.shape.size() != 1 || counts.shape[0] % group != 0 ||
        (counts.shape[0] / group) % group != 0)
      return Status::error(where +
                           ": the expert counts must be i32 [ranks x experts], with "
                           "the experts divided among the " +
                           std::to_string(group) + " ranks");
    if (in.shape.empty() || rows.shape.empty() || in.dtype != rows.dtype ||
        in.bytes() / in.shape[0] != rows.bytes() / rows.shape[0])
      return Status::error(where + " moves rows of one type and width");
    prepared.collective = op == "moe.expert_exchange" ? PreparedStep::Collective::expertExchange
                                                      : PreparedStep::Collective::expertReturn;
    // The chunk of every expert's rows it moves (--overlap-chunks).
    if (find("chunks")) {
      auto chunks = axis("chunks"), chunk = axis("chunk");
      if (!chunks)
        return chunks.status();
      if (!chunk)
        return chunk.status();
      if (*chunks < 1 || *chunk < 0 || *chunk >= *chunks)
        return Status::error(where + " moves chunk " + std::to_string(*chunk) + " of " +
                             std::to_string(*chunks));
      prepared.chunk = *chunk;
      prepared.chunks = *chunks;
    }
  } else {
    return Status::error(where + ": the runtime has no collective '" + std::string(op) + "'");
  }
  steps_.push_back(std::move(prepared));
  return Status::ok();
}

Status Executor::runCollective(const PreparedStep &prepared) {
  const plan::Step &step = *prepared.step;
  const TensorRef &in = tensors_[step.inputs()->Get(0)];
  const TensorRef &out = tensors_[step.outputs()->Get(0)];
  hal::Stream &stream = device_->defaultStream();
  hal::Channel &group = *prepared.channel;
  switch (prepared.collective) {
  case PreparedStep::Collective::allReduce:
    if (out.data != in.data)
      if (Status s = stream.copy(out.data, in.data, in.bytes()); !s)
        return s;
    return group.allReduce(stream, out.data, out.numel(), out.dtype, prepared.reduction);
  case PreparedStep::Collective::allGather:
    return group.allGather(stream, in.data, in.bytes(), out.data);
  case PreparedStep::Collective::allSlice:
    return stream.copy(out.data, static_cast<const char *>(in.data) + group.rank() * out.bytes(),
                       out.bytes());
  case PreparedStep::Collective::localSlots: {
    // Kernels queued before have written the slots.
    if (Status s = stream.synchronize(); !s)
      return s;
    const int64_t first = group.rank() * prepared.tokensPerRank;
    const auto *slots = static_cast<const int32_t *>(in.data);
    auto *mine = static_cast<int32_t *>(out.data);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) {
      int64_t token = int64_t(slots[i]) - first;
      mine[i] = slots[i] >= 0 && token >= 0 && token < prepared.tokensPerRank
                    ? static_cast<int32_t>(token)
                    : -1;
    }
    return Status::ok();
  }
  case PreparedStep::Collective::expertExchange:
  case PreparedStep::Collective::expertReturn:
    return exchangeExperts(prepared);
  case PreparedStep::Collective::allToAll:
    return exchangePieces(prepared);
  case PreparedStep::Collective::slotsToExperts: {
    // Each slot is filled on one rank: the sum over ranks is that row, bit
    // for bit; this rank keeps its experts' block.
    if (Status s = stream.synchronize(); !s)
      return s;
    std::vector<uint8_t> sum(static_cast<const uint8_t *>(in.data),
                             static_cast<const uint8_t *>(in.data) + in.bytes());
    if (Status s = group.allReduce(stream, sum.data(), in.numel(), in.dtype, hal::Reduction::sum);
        !s)
      return s;
    std::memcpy(out.data, sum.data() + group.rank() * out.bytes(), out.bytes());
    return Status::ok();
  }
  case PreparedStep::Collective::slotsFromExperts:
    return group.allGather(stream, in.data, in.bytes(), out.data);
  case PreparedStep::Collective::none:
    break;
  }
  return Status::error("step " + std::to_string(prepared.index) + " is no collective");
}

Status Executor::exchangeExperts(const PreparedStep &prepared) {
  const plan::Step &step = *prepared.step;
  const bool out = prepared.collective == PreparedStep::Collective::expertExchange;
  const TensorRef &from = tensors_[step.inputs()->Get(0)];
  const TensorRef &countsRef = tensors_[step.inputs()->Get(1)];
  const TensorRef &to = tensors_[step.outputs()->Get(0)];
  hal::Channel &group = *prepared.channel;
  hal::Stream &stream = device_->defaultStream();
  // Kernels queued before have written the rows and the counts.
  if (Status s = stream.synchronize(); !s)
    return s;
  const int64_t ranks = group.size(), me = group.rank();
  const int64_t experts = countsRef.numel() / ranks, local = experts / ranks;
  const auto *counts = static_cast<const int32_t *>(countsRef.data);
  const size_t rowBytes = from.bytes() / from.shape[0];
  const int64_t chunk = prepared.chunk, chunks = prepared.chunks;
  // Rank `rank`'s rows for `expert`, all of them and those of the chunk
  // moved: [chunk·n/K, (chunk+1)·n/K) of them.
  auto whole = [&](int64_t rank, int64_t expert) -> int64_t {
    return std::max<int32_t>(counts[rank * experts + expert], 0);
  };
  auto first = [&](int64_t n) { return chunk * n / chunks; };
  auto count = [&](int64_t rank, int64_t expert) -> int64_t {
    int64_t n = whole(rank, expert);
    return (chunk + 1) * n / chunks - first(n);
  };
  // This rank's rows of the chunk, sorted by expert: the block of rank q's
  // experts.
  std::vector<size_t> mineOffset(ranks), mineBytes(ranks);
  // The rows of this rank's experts from rank i, one block per rank.
  std::vector<size_t> theirsOffset(ranks), theirsBytes(ranks);
  size_t mineTotal = 0, theirsTotal = 0, mineWhole = 0;
  for (int64_t q = 0; q < ranks; ++q) {
    size_t n = 0, m = 0;
    for (int64_t e = 0; e < local; ++e) {
      n += count(me, q * local + e);
      m += count(q, me * local + e);
      mineWhole += whole(me, q * local + e);
    }
    mineOffset[q] = mineTotal * rowBytes;
    mineBytes[q] = n * rowBytes;
    theirsOffset[q] = theirsTotal * rowBytes;
    theirsBytes[q] = m * rowBytes;
    mineTotal += n;
    theirsTotal += m;
  }
  const int64_t mineRows = out ? from.shape[0] : to.shape[0];
  const int64_t theirsRows = out ? to.shape[0] : from.shape[0];
  if (static_cast<int64_t>(mineWhole) > mineRows || static_cast<int64_t>(theirsTotal) > theirsRows)
    return Status::error("the expert counts ask for more rows than the exchange holds (" +
                         std::to_string(mineWhole) + " of " + std::to_string(mineRows) + " sent, " +
                         std::to_string(theirsTotal) + " of " + std::to_string(theirsRows) +
                         " received)");
  // This rank's rows of the chunk, packed in expert order, to or from their
  // places among all its rows (the same bytes when there is one chunk).
  std::vector<uint8_t> packed(chunks > 1 ? mineTotal * rowBytes : 0);
  auto pack = [&](uint8_t *rows, bool toPacked) {
    size_t at = 0, cursor = 0;
    for (int64_t e = 0; e < experts; ++e) {
      int64_t n = whole(me, e);
      uint8_t *place = rows + (at + first(n)) * rowBytes;
      size_t bytes = count(me, e) * rowBytes;
      if (toPacked)
        std::memcpy(packed.data() + cursor, place, bytes);
      else
        std::memcpy(place, packed.data() + cursor, bytes);
      at += n;
      cursor += bytes;
    }
  };
  // The received rows, rank-major, regrouped expert-major (and back).
  std::vector<uint8_t> staging(theirsTotal * rowBytes);
  auto regroup = [&](bool toExpertMajor, uint8_t *expertMajor) {
    size_t cursor = 0;
    for (int64_t e = 0; e < local; ++e)
      for (int64_t i = 0; i < ranks; ++i) {
        size_t before = 0;
        for (int64_t f = 0; f < e; ++f)
          before += count(i, me * local + f);
        size_t bytes = count(i, me * local + e) * rowBytes;
        uint8_t *rankMajor = staging.data() + theirsOffset[i] + before * rowBytes;
        if (toExpertMajor)
          std::memcpy(expertMajor + cursor, rankMajor, bytes);
        else
          std::memcpy(rankMajor, expertMajor + cursor, bytes);
        cursor += bytes;
      }
  };
  std::memset(to.data, 0, to.bytes());
  if (out) {
    const void *send = from.data;
    if (chunks > 1) {
      pack(static_cast<uint8_t *>(from.data), /*toPacked=*/true);
      send = packed.data();
    }
    if (Status s = group.allToAll(stream, send, mineOffset, mineBytes, staging.data(), theirsOffset,
                                  theirsBytes);
        !s)
      return s;
    regroup(/*toExpertMajor=*/true, static_cast<uint8_t *>(to.data));
    // The rows per local expert, for the experts' GEMMs.
    auto *sizes = static_cast<int32_t *>(tensors_[step.outputs()->Get(1)].data);
    for (int64_t e = 0; e < local; ++e) {
      int64_t n = 0;
      for (int64_t i = 0; i < ranks; ++i)
        n += count(i, me * local + e);
      sizes[e] = static_cast<int32_t>(n);
    }
    return Status::ok();
  }
  regroup(/*toExpertMajor=*/false, static_cast<uint8_t *>(from.data));
  void *receive = chunks > 1 ? packed.data() : to.data;
  if (Status s = group.allToAll(stream, staging.data(), theirsOffset, theirsBytes, receive,
                                mineOffset, mineBytes);
      !s)
    return s;
  if (chunks > 1)
    pack(static_cast<uint8_t *>(to.data), /*toPacked=*/false);
  return Status::ok();
}

namespace {
/// A tensor of `shape` seen along `axis` split into `parts`: `outer` runs of
/// `parts` pieces, each piece `bytes` long.
struct Pieces {
  int64_t outer = 1;
  size_t bytes = 0;
  Pieces(const std::vector<int64_t> &shape, int64_t axis, int64_t parts, size_t elementBytes) {
    size_t inner = elementBytes;
    for (size_t i = axis + 1; i < shape.size(); ++i)
      inner *= shape[i];
    for (int64_t i = 0; i < axis; ++i)
      outer *= shape[i];
    bytes = shape[axis] / parts * inner;
  }
  /// Copies piece `q` of the tensor at `whole` to or from `packed`.
  void copy(uint8_t *whole, uint8_t *packed, int64_t q, int64_t parts, bool pack) const {
    for (int64_t o = 0; o < outer; ++o) {
      uint8_t *at = whole + (o * parts + q) * bytes;
      if (pack)
        std::memcpy(packed + o * bytes, at, bytes);
      else
        std::memcpy(at, packed + o * bytes, bytes);
    }
  }
};
} // namespace

Status Executor::exchangePieces(const PreparedStep &prepared) {
  const plan::Step &step = *prepared.step;
  const TensorRef &in = tensors_[step.inputs()->Get(0)];
  const TensorRef &out = tensors_[step.outputs()->Get(0)];
  hal::Channel &group = *prepared.channel;
  hal::Stream &stream = device_->defaultStream();
  if (Status s = stream.synchronize(); !s)
    return s;
  const int64_t ranks = group.size();
  const size_t element = dtypeSize(in.dtype);
  // Piece q of the input (along the split axis) goes to rank q; the piece
  // from rank i lands at place i of the output along the concatenation axis.
  Pieces split(in.shape, prepared.splitAxis, ranks, element);
  std::vector<int64_t> pieceShape = in.shape;
  pieceShape[prepared.splitAxis] /= ranks;
  std::vector<int64_t> joined = pieceShape;
  joined[prepared.concatAxis] *= ranks;
  Pieces concat(joined, prepared.concatAxis, ranks, element);
  const size_t pieceBytes = in.bytes() / ranks;
  std::vector<uint8_t> send(in.bytes()), receive(out.bytes());
  std::vector<size_t> offsets(ranks), sizes(ranks, pieceBytes);
  for (int64_t q = 0; q < ranks; ++q) {
    offsets[q] = q * pieceBytes;
    split.copy(static_cast<uint8_t *>(in.data), send.data() + offsets[q], q, ranks, true);
  }
  if (Status s =
          group.allToAll(stream, send.data(), offsets, sizes, receive.data(), offsets, sizes);
      !s)
    return s;
  for (int64_t i = 0; i < ranks; ++i)
    concat.copy(static_cast<uint8_t *>(out.data), receive.data() + offsets[i], i, ranks, false);
  return Status::ok();
}

} // namespace moec::rt
