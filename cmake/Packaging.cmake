# CPack: the Debian package libkiln-dev_<version>_<arch>.deb with everything `cmake --install` installs
# (libkiln, the headers, the CMake package, kiln.pc, kiln_checkpoint). Built by tools/package.sh, which
# configures with -DCMAKE_INSTALL_PREFIX=/usr (so the library goes to lib/<multiarch>) and
# -DKILN_NATIVE=OFF, and passes the -dev dependencies of the installed CMake config to cpack
# (-D CPACK_DEBIAN_PACKAGE_DEPENDS=..., computed by tools/check_setup.sh --packages-for). The shared
# libraries' run-time dependencies come from dpkg-shlibdeps.
set(KILN_PACKAGE_CONTACT "The Kiln Authors <kiln@localhost>" CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libkiln-dev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The Kiln Authors")
set(CPACK_PACKAGE_CONTACT "${KILN_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Kiln, a C++20 machine-learning framework (library, headers, tools)")
set(CPACK_PACKAGE_DESCRIPTION
    "Kiln defines, trains and runs models from C++: graphs traced from C++ functions, reverse-mode\n"
    "autodiff, a CPU backend on oneDNN, Highway and OpenMP, and a training layer. This package has\n"
    "libkiln, its headers, a CMake package (find_package(Kiln)), a pkg-config file (kiln) and the\n"
    "kiln_checkpoint tool.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libkiln.so.<major> is in the package itself: kiln_checkpoint's dependency on it is resolved here.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_INSTALL_FULL_LIBDIR})
set(CPACK_STRIP_FILES ON)
include(CPack)
