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
namespace {
/// Copies `bytes` between `a` and `b` on the stream: into `a` when `intoA`.
Status copyBetween(hal::Stream &stream, void *a, void *b, size_t bytes, bool intoA) {
  if (!bytes)
    return Status::ok();
  return intoA ? stream.copy(a, b, bytes) : stream.copy(b, a, bytes);
}
} // namespace

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
    needStaging(in.bytes(), out.bytes());
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
    if (to)
      needStaging(in.bytes(), 0);
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
    if (op == "moe.expert_exchange") {
      const TensorRef &sizes = tensors_[step->outputs()->Get(1)];
      if (sizes.dtype != DType::i32 || sizes.numel() != counts.shape[0] / group / group)
        return Status::error(where + ": local_sizes must be i32 [" +
                             std::to_string(counts.shape[0] / group / group) +
                             "], one count per expert of the rank");
    }
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
    // This rank's rows packed by chunk; every rank's rows for its experts.
    const bool exchange = op == "moe.expert_exchange";
    const TensorRef &mine = exchange ? in : rows, &theirs = exchange ? rows : in;
    needStaging(mine.bytes(), theirs.bytes());
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
    // The slots on the host (a small i32 tensor), this rank's kept.
    std::vector<int32_t> slots(in.numel());
    if (Status s = stream.download(slots.data(), in.data, in.bytes()); !s)
      return s;
    if (Status s = stream.synchronize(); !s)
      return s;
    const int64_t first = group.rank() * prepared.tokensPerRank;
    for (int32_t &slot : slots) {
      int64_t token = int64_t(slot) - first;
      slot = slot >= 0 && token >= 0 && token < prepared.tokensPerRank ? static_cast<int32_t>(token)
                                                                       : -1;
    }
    if (Status s = stream.upload(out.data, slots.data(), out.bytes()); !s)
      return s;
    return stream.synchronize(); // `slots` goes with this frame
  }
  case PreparedStep::Collective::expertExchange:
  case PreparedStep::Collective::expertReturn:
    return exchangeExperts(prepared);
  case PreparedStep::Collective::allToAll:
    return exchangePieces(prepared);
  case PreparedStep::Collective::slotsToExperts: {
    // Each slot is filled on one rank: the sum over ranks is that row, bit
    // for bit; this rank keeps its experts' block.
    auto *sum = static_cast<uint8_t *>(collectiveStaging_[0]->address());
    if (Status s = stream.copy(sum, in.data, in.bytes()); !s)
      return s;
    if (Status s = group.allReduce(stream, sum, in.numel(), in.dtype, hal::Reduction::sum); !s)
      return s;
    return stream.copy(out.data, sum + group.rank() * out.bytes(), out.bytes());
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
  // Every rank's rows per expert, on the host: they size the copies. (Rows
  // move only on the stream, so any device's memory works.)
  std::vector<int32_t> counts(countsRef.numel());
  if (Status s = stream.download(counts.data(), countsRef.data, countsRef.bytes()); !s)
    return s;
  if (Status s = stream.synchronize(); !s)
    return s;
  const int64_t ranks = group.size(), me = group.rank();
  const int64_t experts = countsRef.numel() / ranks, local = experts / ranks;
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
  auto *packed = static_cast<uint8_t *>(collectiveStaging_[0]->address());
  auto pack = [&](uint8_t *rows, bool toPacked) -> Status {
    size_t at = 0, cursor = 0;
    for (int64_t e = 0; e < experts; ++e) {
      int64_t n = whole(me, e);
      uint8_t *place = rows + (at + first(n)) * rowBytes;
      size_t bytes = count(me, e) * rowBytes;
      if (Status s = copyBetween(stream, packed + cursor, place, bytes, toPacked); !s)
        return s;
      at += n;
      cursor += bytes;
    }
    return Status::ok();
  };
  // The received rows, rank-major, regrouped expert-major (and back).
  auto *staging = static_cast<uint8_t *>(collectiveStaging_[1]->address());
  auto regroup = [&](bool toExpertMajor, uint8_t *expertMajor) -> Status {
    size_t cursor = 0;
    for (int64_t e = 0; e < local; ++e)
      for (int64_t i = 0; i < ranks; ++i) {
        size_t before = 0;
        for (int64_t f = 0; f < e; ++f)
          before += count(i, me * local + f);
        size_t bytes = count(i, me * local + e) * rowBytes;
        uint8_t *rankMajor = staging + theirsOffset[i] + before * rowBytes;
        if (Status s = copyBetween(stream, expertMajor + cursor, rankMajor, bytes, toExpertMajor);
            !s)
          return s;
        cursor += bytes;
      }
    return Status::ok();
  };
  if (Status s = stream.fillZero(to.data, to.bytes()); !s)
    return s;
  if (out) {
    const void *send = from.data;
    if (chunks > 1) {
      if (Status s = pack(static_cast<uint8_t *>(from.data), /*toPacked=*/true); !s)
        return s;
      send = packed;
    }
    if (Status s =
            group.allToAll(stream, send, mineOffset, mineBytes, staging, theirsOffset, theirsBytes);
        !s)
      return s;
    if (Status s = regroup(/*toExpertMajor=*/true, static_cast<uint8_t *>(to.data)); !s)
      return s;
    // The rows per local expert, for the experts' GEMMs.
    std::vector<int32_t> sizes(local);
    for (int64_t e = 0; e < local; ++e)
      for (int64_t i = 0; i < ranks; ++i)
        sizes[e] += static_cast<int32_t>(count(i, me * local + e));
    const TensorRef &sizesRef = tensors_[step.outputs()->Get(1)];
    if (Status s = stream.upload(sizesRef.data, sizes.data(), sizesRef.bytes()); !s)
      return s;
    // The host copy lives in this frame: wait for the upload.
    return stream.synchronize();
  }
  if (Status s = regroup(/*toExpertMajor=*/false, static_cast<uint8_t *>(from.data)); !s)
    return s;
  void *receive = chunks > 1 ? static_cast<void *>(packed) : to.data;
  if (Status s = group.allToAll(stream, staging, theirsOffset, theirsBytes, receive, mineOffset,
                                mineBytes);
      !s)
    return s;
  if (chunks > 1)
    return pack(static_cast<uint8_t *>(to.data), /*toPacked=*/false);
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
  /// Copies piece `q` of the tensor at `whole` to or from `packed`, on the
  /// stream.
  Status copy(hal::Stream &stream, uint8_t *whole, uint8_t *packed, int64_t q, int64_t parts,
              bool pack) const {
    for (int64_t o = 0; o < outer; ++o) {
      uint8_t *at = whole + (o * parts + q) * bytes;
      if (Status s = copyBetween(stream, packed + o * bytes, at, bytes, pack); !s)
        return s;
    }
    return Status::ok();
  }
};
} // namespace

Status Executor::exchangePieces(const PreparedStep &prepared) {
  const plan::Step &step = *prepared.step;
  const TensorRef &in = tensors_[step.inputs()->Get(0)];
  const TensorRef &out = tensors_[step.outputs()->Get(0)];
  hal::Channel &group = *prepared.channel;
  hal::Stream &stream = device_->defaultStream();
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
  auto *send = static_cast<uint8_t *>(collectiveStaging_[0]->address());
  auto *receive = static_cast<uint8_t *>(collectiveStaging_[1]->address());
  std::vector<size_t> offsets(ranks), sizes(ranks, pieceBytes);
  for (int64_t q = 0; q < ranks; ++q) {
    offsets[q] = q * pieceBytes;
    if (Status s =
            split.copy(stream, static_cast<uint8_t *>(in.data), send + offsets[q], q, ranks, true);
        !s)
      return s;
  }
  if (Status s = group.allToAll(stream, send, offsets, sizes, receive, offsets, sizes); !s)
    return s;
  for (int64_t i = 0; i < ranks; ++i)
    if (Status s = concat.copy(stream, static_cast<uint8_t *>(out.data), receive + offsets[i], i,
                               ranks, false);
        !s)
      return s;
  return Status::ok();
}

} // namespace moec::rt
