# Embeds every gateway/lua/*.lua into C: include() this file from a CMakeLists.txt.
#
# Defines, in the including directory:
#   GW_LUA_SOURCES  the generated ${CMAKE_CURRENT_BINARY_DIR}/lua_scripts.c, which defines
#                   `const char *const gw_lua_<name>` per script plus the gw_lua_scripts[]
#                   table declared in lua_scripts.h. It is regenerated at build time whenever
#                   a .lua file (or the generator) changes; a new .lua file is picked up by
#                   the CONFIGURE_DEPENDS glob. The source carries its own include path, so
#                   it compiles in any target.
#   gw_lua_scripts  a static library of that source, with gateway/lua as PUBLIC include
#                   directory (#include "lua_scripts.h"). Created by the first include()
#                   only; the gateway and tests/lua both link it.
# Link gw_lua_scripts, or add ${GW_LUA_SOURCES} to a target's sources: one or the other,
# never both in one binary (the symbols would be defined twice).
set(GW_LUA_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB GW_LUA_FILES CONFIGURE_DEPENDS ${GW_LUA_DIR}/*.lua)
set(GW_LUA_SOURCES ${CMAKE_CURRENT_BINARY_DIR}/lua_scripts.c)

add_custom_command(
  OUTPUT ${GW_LUA_SOURCES}
  COMMAND ${CMAKE_COMMAND} -DGW_LUA_DIR=${GW_LUA_DIR} -DGW_LUA_OUT=${GW_LUA_SOURCES}
          -P ${GW_LUA_DIR}/embed_gen.cmake
  DEPENDS ${GW_LUA_FILES} ${GW_LUA_DIR}/embed_gen.cmake ${GW_LUA_DIR}/lua_scripts.h
  COMMENT "Embedding gateway Lua scripts"
  VERBATIM)
set_source_files_properties(${GW_LUA_SOURCES} PROPERTIES INCLUDE_DIRECTORIES ${GW_LUA_DIR})

if(NOT TARGET gw_lua_scripts)
  add_library(gw_lua_scripts STATIC ${GW_LUA_SOURCES})
  target_include_directories(gw_lua_scripts PUBLIC ${GW_LUA_DIR})
endif()
