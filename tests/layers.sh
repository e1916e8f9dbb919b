#!/usr/bin/env bash
# layers.sh — the layering check: fails on any reference that runs the wrong
# way between troupe's folders (docs/architecture.md, "Layers").
#
#   tests/layers.sh [SOURCE_DIR [OBJECTS]]
#
# The layers, lowest first: channels/ (the transport) <- actors/ (the
# runtime) <- subsystems. A subsystem is every top-level folder but actors,
# channels, include, tests, examples, bench, docs, cmake (and build trees):
# supervisor/ today, sockets or metrics later. The rules:
#
#   channels/   includes nothing from another folder of the tree but
#               include/ (troupe.h); system, ck and libuv headers are its to
#               use. Its objects reference no symbol defined in another
#               folder.
#   actors/     includes nothing from a subsystem; its objects reference no
#               symbol defined in one.
#   subsystems  include from actors/ only subsys.h, the runtime's one header
#               for them (what it includes, they get through it).
#   http/       is built on the public API alone: it includes nothing from
#               the tree but include/ (troupe.h) and its own headers (system
#               and http-parser headers are its to use), and its objects
#               reference no tr__ symbol defined in another folder.
#
# Includes are read from the sources (every .c and .h), each resolved as the
# compiler does: a quoted name in the includer's folder first, then in
# include/, actors/, channels/ and the subsystems (the library's include
# path, in its order). A name found in none of them is a system or
# third-party header. Symbols are checked when OBJECTS is given: the
# library's object files (a ;- or space-separated list, as CMake's
# $<TARGET_OBJECTS:troupe_objects> gives them, or a directory to search for *.o),
# each placed in its folder by its path (.../troupe_objects.dir/actors/actor.c.o).
# `nm -l` names the source line of each reference when the objects have
# debug information. NM names the nm to use (default: nm).
#
# Every violation is printed as file:line and a reason; the exit status is
# 1 if there was one, 2 on a usage error, 0 otherwise. ctest runs it as the
# test `layers` (tests/CMakeLists.txt), so the README's test command and CI
# run it.
set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
src=$(cd "$src" && pwd)
shift || true
objects="$*"
NM=${NM:-nm}

for d in actors channels include; do
  [ -d "$src/$d" ] || { echo "layers.sh: $src has no $d/: not troupe's source tree" >&2; exit 2; }
done

# The subsystem folders: every top-level folder but the known ones, hidden
# ones and build trees.
subsystems=()
for d in "$src"/*/; do
  d=${d%/}
  name=${d##*/}
  case "$name" in
    actors|channels|include|tests|examples|bench|docs|cmake|build*|out) continue ;;
  esac
  [ -e "$d/CMakeCache.txt" ] && continue
  subsystems+=("$name")
done
is_subsystem() {
  local s
  for s in "${subsystems[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}
search=(include actors channels "${subsystems[@]}")

violations=0
violation() { # where message
  echo "$1: $2"
  violations=$((violations + 1))
}

# ---- includes --------------------------------------------------------------

# resolve FILE FORM NAME: prints the included file's path relative to src,
# or nothing for a header outside the tree.
resolve() {
  local file=$1 form=$2 name=$3 dir cand d
  dir=$(dirname "$src/$file")
  if [[ "$name" == */* ]]; then
    for cand in "$dir/$name" "$src/$name"; do
      [ "$form" = angle ] && [ "$cand" = "$dir/$name" ] && continue
      if [ -f "$cand" ]; then
        cand=$(realpath -m "$cand")
        [[ "$cand" == "$src"/* ]] && echo "${cand#"$src"/}"
        return
      fi
    done
    return
  fi
  if [ "$form" = quote ] && [ -f "$dir/$name" ]; then
    cand=$(realpath -m "$dir/$name")
    echo "${cand#"$src"/}"
    return
  fi
  for d in "${search[@]}"; do
    if [ -f "$src/$d/$name" ]; then
      echo "$d/$name"
      return
    fi
  done
}

# check_include FROM_FOLDER FILE LINE NAME TARGET
check_include() {
  local from=$1 file=$2 line=$3 name=$4 target=$5 to
  to=${target%%/*}
  [ "$to" = "$from" ] || [ "$to" = include ] && return 0
  case "$from" in
    channels)
      violation "$file:$line" "channels/ includes \"$name\" ($target): the transport includes nothing from $to/ (only troupe.h and its own headers)"
      ;;
    actors)
      if is_subsystem "$to"; then
        violation "$file:$line" "actors/ includes \"$name\" ($target): the runtime includes nothing from a subsystem"
      elif [ "$to" != channels ]; then
        violation "$file:$line" "actors/ includes \"$name\" ($target): not a folder the runtime builds on"
      fi
      ;;
    http)
      violation "$file:$line" "http/ includes \"$name\" ($target): the HTTP module uses only the public API (troupe.h) and its own headers"
      ;;
    *)
      if [ "$to" = actors ] && [ "${target#actors/}" != subsys.h ]; then
        violation "$file:$line" "$from/ includes \"$name\" ($target): a subsystem includes only subsys.h from actors/"
      elif [ "$to" != actors ] && [ "$to" != channels ] && ! is_subsystem "$to"; then
        violation "$file:$line" "$from/ includes \"$name\" ($target): not a folder a subsystem builds on"
      fi
      ;;
  esac
}

for from in channels actors "${subsystems[@]}"; do
  while IFS= read -r -d '' path; do
    file=${path#"$src"/}
    # file:line:form:name for every #include line.
    while IFS=: read -r line form name; do
      target=$(resolve "$file" "$form" "$name")
      [ -n "$target" ] && check_include "$from" "$file" "$line" "$name" "$target"
    done < <(awk '
      /^[ \t]*#[ \t]*include[ \t]*[<"]/ {
        s = $0
        sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
        form = substr(s, 1, 1) == "<" ? "angle" : "quote"
        name = substr(s, 2)
        sub(/[>"].*$/, "", name)
        print FNR ":" form ":" name
      }' "$path")
  done < <(find "$src/$from" \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
done

# ---- symbols ---------------------------------------------------------------

if [ -n "$objects" ]; then
  objs=()
  for o in ${objects//;/ }; do
    if [ -d "$o" ]; then
      while IFS= read -r -d '' f; do objs+=("$f"); done < <(find "$o" -name '*.o' -print0 | sort -z)
    else
      objs+=("$o")
    fi
  done
  [ ${#objs[@]} -gt 0 ] || { echo "layers.sh: no object files in: $objects" >&2; exit 2; }
  for o in "${objs[@]}"; do
    [ -f "$o" ] || { echo "layers.sh: $o is missing: build the library first" >&2; exit 2; }
  done

  # Two passes of nm over all the objects (nm -A names the object on each
  # line): the external symbols they define, then the references of
  # channels/, actors/ and http/ objects; a reference to a symbol defined in a
  # folder its own must not use is a violation (for http/: a tr__ symbol
  # of another folder). (A subsystem may use any
  # runtime symbol subsys.h declares: its includes are checked above.)
  defs=$(mktemp)
  trap 'rm -f "$defs"' EXIT
  "$NM" -A --defined-only -g "${objs[@]}" >"$defs"
  [ -s "$defs" ] || { echo "layers.sh: the objects define no symbol: $objects" >&2; exit 2; }
  found=$("$NM" -A -u -l "${objs[@]}" | awk -v src="$src/" -v subs=" ${subsystems[*]} " -v defs="$defs" '
    # The object a line of nm -A is about, and the rest of the line.
    function split_obj(line) {
      at = index(line, ".o:")
      obj = substr(line, 1, at + 1)
      rest = substr(line, at + 3)
    }
    # The source folder an object was compiled from (.../troupe_objects.dir/actors/x.c.o).
    function folder_of(o,   p) {
      p = o
      sub(/^.*\.dir\//, "", p)
      sub(/\/.*$/, "", p)
      return p
    }
    BEGIN {
      while ((getline line < defs) > 0) {
        split_obj(line)
        n = split(rest, f, " ")
        if (n >= 3) {
          folder[f[3]] = folder_of(obj)
          object[f[3]] = obj
          sub(/^.*\//, "", object[f[3]])
        }
      }
    }
    {
      split_obj($0)
      from = folder_of(obj)
      if (from != "channels" && from != "actors" && from != "http")
        next
      n = split(rest, f, /[ \t]+/)
      i = 1
      while (f[i] == "")
        i++
      if (f[i] != "U" || !((f[i + 1]) in folder))
        next
      sym = f[i + 1]
      to = folder[sym]
      bad = (from == "channels" && to != "channels") ||
            (from == "actors" && index(subs, " " to " ") > 0) ||
            (from == "http" && to != "http" && sym ~ /^tr__/)
      if (!bad)
        next
      o = obj
      sub(/^.*\//, "", o)
      where = f[i + 2] != "" ? f[i + 2] : o
      if (index(where, src) == 1)
        where = substr(where, length(src) + 1)
      printf "%s: %s/%s references %s, defined in %s/%s\n", where, from, o, sym, to, object[sym]
    }')
  if [ -n "$found" ]; then
    echo "$found"
    violations=$((violations + $(echo "$found" | wc -l)))
  fi
fi

if [ $violations -gt 0 ]; then
  echo "layers.sh: $violations reference(s) run the wrong way (see docs/architecture.md, Layers)"
  exit 1
fi
echo "layers.sh: ok (channels <- actors <- ${subsystems[*]:-no subsystem}; includes${objects:+ and symbols})"
