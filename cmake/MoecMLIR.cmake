# Finds MLIR/LLVM 19 and chooses, in this one place, the libraries that
# compiler-side targets link: the shared libMLIR.so and libLLVM.so.

# MLIRConfigVersion accepts exact versions only, so check the major by hand.
find_package(MLIR REQUIRED CONFIG HINTS /usr/lib/llvm-19/lib/cmake/mlir)
if(NOT LLVM_VERSION_MAJOR EQUAL 19)
  message(FATAL_ERROR "moec needs MLIR/LLVM 19, found ${LLVM_PACKAGE_VERSION} "
                      "at ${MLIR_DIR}: run scripts/setup.sh")
endif()
message(STATUS "Using MLIRConfig.cmake in: ${MLIR_DIR}")
message(STATUS "Using LLVMConfig.cmake in: ${LLVM_DIR}")

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")

# Out-of-tree projects point the doc and tablegen outputs at their own tree.
set(MLIR_BINARY_DIR ${CMAKE_BINARY_DIR})
set(LLVM_RUNTIME_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/bin)
set(LLVM_LIBRARY_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/lib)

# MLIRConfig names mlir-tblgen without a path; Debian keeps it out of PATH.
set(MLIR_TABLEGEN_EXE "${LLVM_TOOLS_BINARY_DIR}/mlir-tblgen")

include(TableGen)
include(AddLLVM)
include(AddMLIR)
include(HandleLLVMOptions)

# Compiler-side targets link MoecMLIR: LLVM/MLIR headers, definitions and
# the one list of libraries (the imported MLIR target does not carry LLVM in
# its link interface, see MACHINE-NOTES). The runtime never links it.
add_library(MoecMLIR INTERFACE)
target_include_directories(MoecMLIR SYSTEM INTERFACE
                           ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
target_link_directories(MoecMLIR INTERFACE ${LLVM_LIBRARY_DIR})
separate_arguments(MOEC_LLVM_DEFINITIONS UNIX_COMMAND "${LLVM_DEFINITIONS}")
target_compile_options(MoecMLIR INTERFACE ${MOEC_LLVM_DEFINITIONS})
target_link_libraries(MoecMLIR INTERFACE MLIR LLVM)

# lit from Debian's llvm-19-tools, run with python3.
set(MOEC_LIT "/usr/lib/llvm-19/build/utils/lit/lit.py" CACHE FILEPATH "lit.py")
set(MOEC_LLVM_TOOLS_DIR "${LLVM_TOOLS_BINARY_DIR}" CACHE PATH "FileCheck, not, count")
