// The translation unit that compiles cmake/test_pch.h for dfly_test() targets.
