# The pool and queue tests (Native/tests). Each is a plain executable that exits non-zero on the first failed
# check; ctest runs them one by one. They look inside the segment through src/pool_layout.h.

set(LIFL_POOL_TESTS
  beacon_test
  pool_alloc_test
  pool_open_test
  pool_refcount_test
  pool_recovery_test
  pool_stress_test
  queue_test)

foreach(test IN LISTS LIFL_POOL_TESTS)
  add_executable(${test} tests/${test}.c)
  target_include_directories(${test} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${test} PRIVATE liflnative pthread)
  add_test(NAME ${test} COMMAND ${test})
  set_tests_properties(${test} PROPERTIES TIMEOUT 60)
endforeach()
