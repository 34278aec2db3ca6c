# eBPF socket redirection: bpf/silo_redirect.bpf.c compiled with clang, embedded through a bpftool skeleton
# into src/ebpf.c, linked against libbpf. Without LIFL_WITH_EBPF or one of the tools, src/ebpf_unsupported.c
# stands in and lifl_ebpf_open says why.

set(LIFL_EBPF_MISSING "")
if(NOT LIFL_WITH_EBPF)
  set(LIFL_EBPF_MISSING "LIFL_WITH_EBPF is OFF")
endif()

if(NOT LIFL_EBPF_MISSING)
  find_program(LIFL_BPF_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14)
  find_program(LIFL_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin)
  if(NOT LIFL_BPF_CLANG)
    set(LIFL_EBPF_MISSING "clang not found (it compiles the BPF programs)")
  elseif(NOT LIFL_BPFTOOL)
    set(LIFL_EBPF_MISSING "bpftool not found (it generates the BPF skeleton)")
  endif()
endif()

if(NOT LIFL_EBPF_MISSING)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(LIFL_LIBBPF QUIET IMPORTED_TARGET libbpf)
  endif()
  if(LIFL_LIBBPF_FOUND)
    set(LIFL_LIBBPF_TARGET PkgConfig::LIFL_LIBBPF)
  else()
    find_library(LIFL_LIBBPF_LIBRARY NAMES bpf)
    find_path(LIFL_LIBBPF_INCLUDE_DIR NAMES bpf/libbpf.h)
    if(LIFL_LIBBPF_LIBRARY AND LIFL_LIBBPF_INCLUDE_DIR)
      add_library(lifl_libbpf INTERFACE)
      target_link_libraries(lifl_libbpf INTERFACE ${LIFL_LIBBPF_LIBRARY})
      target_include_directories(lifl_libbpf INTERFACE ${LIFL_LIBBPF_INCLUDE_DIR})
      set(LIFL_LIBBPF_TARGET lifl_libbpf)
    else()
      set(LIFL_EBPF_MISSING "libbpf not found (install libbpf-dev)")
    endif()
  endif()
endif()

# A build that lacked a tool looks again at its next build (Orleans.LIFL.Native.csproj rebuilds while this stamp is
# missing): tools installed after a first build are then used, not the cached "off".
set(LIFL_EBPF_SETTLED ${CMAKE_BINARY_DIR}/ebpf-settled.stamp)
if(LIFL_EBPF_MISSING AND LIFL_WITH_EBPF)
  file(REMOVE ${LIFL_EBPF_SETTLED})
else()
  file(TOUCH ${LIFL_EBPF_SETTLED})
endif()

if(NOT LIFL_EBPF_MISSING)
  # The BPF target has no system include directory of its own: linux/bpf.h needs the multiarch asm/ headers.
  set(LIFL_BPF_INCLUDES -I${CMAKE_CURRENT_SOURCE_DIR}/bpf)
  if(CMAKE_LIBRARY_ARCHITECTURE)
    list(APPEND LIFL_BPF_INCLUDES -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  if(LIFL_LIBBPF_FOUND)
    foreach(dir IN LISTS LIFL_LIBBPF_INCLUDE_DIRS)
      list(APPEND LIFL_BPF_INCLUDES -I${dir})
    endforeach()
  elseif(LIFL_LIBBPF_INCLUDE_DIR)
    list(APPEND LIFL_BPF_INCLUDES -I${LIFL_LIBBPF_INCLUDE_DIR})
  endif()

  set(LIFL_BPF_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/bpf/silo_redirect.bpf.c)
  set(LIFL_BPF_OBJECT ${CMAKE_CURRENT_BINARY_DIR}/bpf/silo_redirect.bpf.o)
  set(LIFL_BPF_LINKED ${CMAKE_CURRENT_BINARY_DIR}/bpf/silo_redirect.linked.bpf.o)
  set(LIFL_BPF_SKELETON ${CMAKE_CURRENT_BINARY_DIR}/bpf/silo_redirect.skel.h)

  # `bpftool gen object` drops the DWARF, which the skeleton would otherwise embed; BTF stays.
  add_custom_command(
    OUTPUT ${LIFL_BPF_SKELETON}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf
    COMMAND ${LIFL_BPF_CLANG} -target bpf -O2 -g -Wall -Werror ${LIFL_BPF_INCLUDES}
            -c ${LIFL_BPF_SOURCE} -o ${LIFL_BPF_OBJECT}
    COMMAND ${LIFL_BPFTOOL} gen object ${LIFL_BPF_LINKED} ${LIFL_BPF_OBJECT}
    COMMAND ${LIFL_BPFTOOL} gen skeleton ${LIFL_BPF_LINKED} name silo_redirect_bpf > ${LIFL_BPF_SKELETON}
    DEPENDS ${LIFL_BPF_SOURCE}
    BYPRODUCTS ${LIFL_BPF_OBJECT} ${LIFL_BPF_LINKED}
    COMMENT "Compiling silo_redirect.bpf.c and generating its skeleton"
    VERBATIM)
  add_custom_target(lifl_bpf_skeleton DEPENDS ${LIFL_BPF_SKELETON})

  target_sources(liflnative PRIVATE src/ebpf.c ${LIFL_BPF_SKELETON})
  target_include_directories(liflnative PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  target_link_libraries(liflnative PRIVATE ${LIFL_LIBBPF_TARGET})
  add_dependencies(liflnative lifl_bpf_skeleton)
  message(STATUS "liflnative: eBPF redirection on (clang ${LIFL_BPF_CLANG}, bpftool ${LIFL_BPFTOOL})")
else()
  target_sources(liflnative PRIVATE src/ebpf_unsupported.c)
  set_source_files_properties(src/ebpf_unsupported.c PROPERTIES
    COMPILE_DEFINITIONS "LIFL_EBPF_UNSUPPORTED_REASON=\"${LIFL_EBPF_MISSING}\"")
  message(STATUS "liflnative: eBPF redirection off: ${LIFL_EBPF_MISSING}")
endif()

# Needs root; without it, or in a build without eBPF, it reports why and is skipped (exit code 77).
if(LIFL_WITH_EBPF)
  add_executable(ebpf_test tests/ebpf_test.c)
  target_link_libraries(ebpf_test PRIVATE liflnative)
  if(NOT LIFL_EBPF_MISSING)
    # The test looks at the pins and the cgroup's attachments itself, independently of the library.
    target_compile_definitions(ebpf_test PRIVATE LIFL_TEST_WITH_LIBBPF=1)
    target_link_libraries(ebpf_test PRIVATE ${LIFL_LIBBPF_TARGET})
  endif()
  add_test(NAME ebpf_test COMMAND ebpf_test)
  set_tests_properties(ebpf_test PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
endif()
