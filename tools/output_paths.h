// File names made from names a model controls (output keys, dict keys, variable names): they
// must never lead outside the output folder the user chose.
#pragma once

#include <filesystem>
#include <string>

#include "hubimg/status.h"

namespace hubimg::cli {

// `name` as one file-name component: bytes in [A-Za-z0-9_-] and '.' (not leading) are kept,
// every other byte becomes %XX (upper-case hex), so "dense_3" stays "dense_3",
// "model/dense/kernel:0" becomes "model%2Fdense%2Fkernel%3A0", ".." becomes "%2E." and a NUL
// "%00". Distinct names give distinct file names; names whose escaped form is longer than 200
// bytes are cut and end in "~" and a hash of the whole name. Empty: an error.
Expected<std::string> safe_file_name(const std::string& name);

// `dir`/<safe_file_name(name)><extension>, checked to resolve (symlinks included) to a file
// directly inside `dir`. `what` names the name's role in errors ("output key").
Expected<std::filesystem::path> output_file_path(const std::filesystem::path& dir,
                                                 const std::string& name,
                                                 const std::string& extension,
                                                 const std::string& what);

// Checks that `path` (a file about to be written) resolves to somewhere inside `dir`.
Status check_inside(const std::filesystem::path& dir, const std::filesystem::path& path);

// One line of a text listing: '\\', '\n' and '\r' escaped as \\, \n and \r, so that a file
// name holding a newline cannot add a line.
std::string escape_line(const std::string& text);

}  // namespace hubimg::cli
