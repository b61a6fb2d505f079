// SPDX-License-Identifier: GPL-2.0
//! cow-demo binary: parses the command line, runs it, maps the result to an exit status.

fn main() {
    let result = cow_demo::run(std::env::args_os());
    std::process::exit(cow_demo::exit_code(&result));
}
