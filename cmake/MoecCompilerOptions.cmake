# Compiler launcher, assertions and sanitizers for every moec target.

find_program(MOEC_CCACHE ccache)
if(MOEC_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER "${MOEC_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${MOEC_CCACHE}")
endif()

if(MOEC_ENABLE_ASSERTIONS)
  # Release flags carry -DNDEBUG; drop it so our assert()s stay on. Debian's
  # LLVM is built with LLVM_ENABLE_ABI_BREAKING_CHECKS=0, so headers agree.
  foreach(flags CMAKE_C_FLAGS_RELEASE CMAKE_CXX_FLAGS_RELEASE
                CMAKE_C_FLAGS_RELWITHDEBINFO CMAKE_CXX_FLAGS_RELWITHDEBINFO)
    string(REPLACE "-DNDEBUG" "" ${flags} "${${flags}}")
  endforeach()
endif()

if(MOEC_ENABLE_SANITIZERS)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The nested build of the fuzzers (test/fuzz): clang's coverage for libFuzzer
# in every library they link.
if(MOEC_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter)

# Nothing reads errno after a math call; without this, GCC keeps sqrt and
# friends scalar (to set errno), which made the AdamW update 4x slower.
add_compile_options(-fno-math-errno)

if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # LLVM's options turn these on for clang; generated FlatBuffers code and
  # aggregate initialisers trip them without a fault.
  add_compile_options(-Wno-covered-switch-default -Wno-missing-field-initializers)
endif()
