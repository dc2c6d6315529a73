// Signatures.h - the op signatures of each family of ops (OpSignature.h),
// one file per family, next to the dialect's .td file of the same name.
#ifndef MOEC_RUNTIME_CORE_SIGNATURES_SIGNATURES_H
#define MOEC_RUNTIME_CORE_SIGNATURES_SIGNATURES_H

namespace moec::rt {
class SignatureTable;
} // namespace moec::rt

namespace moec::rt::signatures {

void addDenseSignatures(SignatureTable &table);
void addRoutingSignatures(SignatureTable &table);
void addLossSignatures(SignatureTable &table);
void addDispatchSignatures(SignatureTable &table);
void addExpertSignatures(SignatureTable &table);
void addLinearAttentionSignatures(SignatureTable &table);
void addOptimizerSignatures(SignatureTable &table);
/// Views and slices (tensor), collectives (mesh), fusion groups.
void addStructureSignatures(SignatureTable &table);

inline void addAll(SignatureTable &table) {
  addDenseSignatures(table);
  addRoutingSignatures(table);
  addLossSignatures(table);
  addDispatchSignatures(table);
  addExpertSignatures(table);
  addLinearAttentionSignatures(table);
  addOptimizerSignatures(table);
  addStructureSignatures(table);
}

} // namespace moec::rt::signatures

#endif // MOEC_RUNTIME_CORE_SIGNATURES_SIGNATURES_H
