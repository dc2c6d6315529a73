//===- OverlapChunks.cpp - expert exchanges in chunks that overlap compute ===//
//
// Splits each dropless expert exchange -> expert FFN -> return chain into K
// chains over the chunks of every expert's rows (docs/design/sharding.md,
// "Overlap").
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace moec {
#define GEN_PASS_DEF_MOEOVERLAPCHUNKSPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

/// An expert exchange, the FFN of its rows and the return of its results.
struct ExpertChain {
  ExpertExchangeOp exchange;
  GroupedFFNOp ffn;
  ExpertReturnOp back;
};

/// The chain that starts at `exchange`, when nothing else reads its values.
std::optional<ExpertChain> matchChain(ExpertExchangeOp exchange) {
  if (exchange.getChunks() != 1 || !exchange.getReceived().hasOneUse() ||
      !exchange.getLocalSizes().hasOneUse())
    return std::nullopt;
  auto ffn = dyn_cast<GroupedFFNOp>(*exchange.getReceived().getUsers().begin());
  if (!ffn || ffn.getInput() != exchange.getReceived() ||
      ffn.getGroupSizes() != exchange.getLocalSizes() || !ffn.getResult().hasOneUse())
    return std::nullopt;
  auto back = dyn_cast<ExpertReturnOp>(*ffn.getResult().getUsers().begin());
  if (!back || back.getCounts() != exchange.getCounts() || back.getMesh() != exchange.getMesh() ||
      back.getMeshAxes() != exchange.getMeshAxes() || back.getChunks() != 1)
    return std::nullopt;
  return ExpertChain{exchange, ffn, back};
}

class MoEOverlapChunksPass : public impl::MoEOverlapChunksPassBase<MoEOverlapChunksPass> {
public:
  using MoEOverlapChunksPassBase::MoEOverlapChunksPassBase;

  void runOnOperation() override {
    if (chunks < 1) {
      getOperation().emitError("moe-overlap-chunks: chunks must be at least 1, not ")
          << static_cast<int64_t>(chunks);
      return signalPassFailure();
    }
    if (chunks == 1)
      return;
    SmallVector<ExpertChain> chains;
    getOperation().walk([&](ExpertExchangeOp exchange) {
      if (std::optional<ExpertChain> chain = matchChain(exchange))
        chains.push_back(*chain);
    });
    for (ExpertChain &chain : chains)
      split(chain);
  }

private:
  void split(ExpertChain chain) {
    ExpertExchangeOp exchange = chain.exchange;
    OpBuilder b(exchange);
    auto rowsType = cast<RankedTensorType>(exchange.getRows().getType());
    auto receivedType = cast<RankedTensorType>(exchange.getReceived().getType());
    auto countsType = cast<RankedTensorType>(exchange.getCounts().getType());
    const int64_t rows = rowsType.getDimSize(0);
    const int64_t ranks = receivedType.getDimSize(0) / rows;
    const int64_t experts = countsType.getDimSize(0) / ranks;
    // A rank's rows of one chunk: Σ_e ⌈n_e / K⌉ <= ⌈N / K⌉ + E - 1.
    const int64_t chunkRows = std::min(rows, (rows + chunks - 1) / chunks + experts);
    auto chunkType = receivedType.clone({ranks * chunkRows, receivedType.getDimSize(1)});
    Location loc = exchange.getLoc();
    auto chunkAttr = [&](int64_t c) { return b.getI64IntegerAttr(c); };
    // Every chunk's exchange first: chunk c + 1 travels while chunk c computes.
    SmallVector<ExpertExchangeOp> exchanges;
    for (int64_t c = 0; c < chunks; ++c)
      exchanges.push_back(b.create<ExpertExchangeOp>(
          loc, TypeRange{chunkType, exchange.getLocalSizes().getType()}, exchange.getRows(),
          exchange.getCounts(), exchange.getMeshAttr(), exchange.getMeshAxesAttr(), chunkAttr(c),
          chunkAttr(chunks)));
    b.setInsertionPoint(chain.back);
    Value sum;
    for (int64_t c = 0; c < chunks; ++c) {
      IRMapping map;
      map.map(exchange.getReceived(), exchanges[c].getReceived());
      map.map(exchange.getLocalSizes(), exchanges[c].getLocalSizes());
      Operation *ffn = b.clone(*chain.ffn, map);
      ffn->getResult(0).setType(chunkType);
      Value back = b.create<ExpertReturnOp>(loc, rowsType, ffn->getResult(0), exchange.getCounts(),
                                            exchange.getMeshAttr(), exchange.getMeshAxesAttr(),
                                            chunkAttr(c), chunkAttr(chunks));
      // Each chunk's rows are zero in the others' places: the sum is exact.
      sum = sum ? b.create<AddOp>(loc, sum, back).getResult() : back;
    }
    chain.back.getResult().replaceAllUsesWith(sum);
    chain.back.erase();
    chain.ffn.erase();
    exchange.erase();
  }
};

} // namespace
} // namespace moec
