"""Sphinx configuration for gochan's documentation: `make docs` builds it into build/docs/.

The guide pages are plain Markdown, read the same on GitHub and here (MyST). Two things that
GitHub has no use for are added here rather than written into the pages:

- the navigation: the table of contents is appended to index.md as Sphinx reads it (GUIDE);
- the API reference (api.rst) documents each object from its docstring (autodoc), with the
  parameter and return types of gochan/__init__.pyi: the C functions carry parameter names but
  no annotations, so the stub's signature is shown in place of the run-time one.

Docstrings are written for help(): an indented block after a paragraph is an example. They are
turned into reStructuredText literal blocks before Sphinx parses them (literal_examples).
"""

import ast
import inspect
import logging
import pathlib
import re
import textwrap


DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "gochan"
author = "the gochan authors"
copyright = "the gochan authors"
release = version = "0.1.0"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
# The guide is Markdown; api.rst is reStructuredText, the language of autodoc's output.
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["examples"]
templates_path: list[str] = []

# GitHub's heading anchors, which the pages link to (#the-gil), exist here too.
myst_heading_anchors = 3
# ::: fences for directives: a ``` fence must name a language that tests/test_docs.py knows.
myst_enable_extensions = ["colon_fence"]

# `name` in a docstring links to the object when there is one, else shows as code.
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# The names are documented where gochan exports them, not in their private modules.
add_module_names = False

html_theme = "alabaster"
html_title = "gochan"
html_theme_options = {"description": "Go's concurrency model for threaded Python"}

# The guide in reading order; a page missing here fails the build ("not in any toctree").
GUIDE = [
    "channels",
    "select",
    "timers",
    "contexts",
    "goroutines",
    "sync",
    "patterns",
    "ratelimit",
    "retry",
    "coming-from-go",
    "gil-and-free-threading",
    "guarantees",
    "performance",
    "internals",
    "api",
]


def add_navigation(app, docname, source):
    if docname == root_doc:
        entries = "\n".join(GUIDE)
        source[0] += f"\n\n:::{{toctree}}\n:hidden:\n:maxdepth: 2\n\n{entries}\n:::\n"


# --- docstrings --------------------------------------------------------------------------------

INDENTED = re.compile(r"^\s+\S")


def raw_docstring(obj):
    """(obj's docstring as written in its source, how far its lines are indented there).

    A Python object's docstring is read from its source: Python 3.13 removes the indentation
    of a docstring's lines when it compiles it. A C object's is __doc__, whose lines start at
    column 0, less the text signature that autodoc has already read.
    """
    target = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        doc = getattr(obj, "__doc__", None)
        if not isinstance(doc, str):
            return None, 0
        lines = doc.splitlines()
        if len(lines) >= 3 and lines[1] == "--" and not lines[2].strip():
            doc = "\n".join(lines[3:])
        return doc, 0
    tree = ast.parse(source)
    node = tree if inspect.ismodule(target) else tree.body[0]
    # A module's docstring starts at column 0; a def's or a class's, in its body.
    return ast.get_docstring(node, clean=False), 0 if inspect.ismodule(target) else 4


def as_written(obj, lines):
    """The docstring with each line indented as its author indented it.

    autodoc removes the indentation that the lines after the first have in common, which
    flattens a docstring whose only content after its summary is an example. Each line is
    dedented by the docstring's own indentation in the source instead. `lines` is returned
    as it is unless its text is the docstring's, line for line.
    """
    doc, base = raw_docstring(obj)
    if doc is None:
        return lines
    raw = doc.expandtabs(8).splitlines()
    written = [raw[0].strip()]
    written += [line.lstrip() if line[:base].strip() else line[base:] for line in raw[1:]]
    while written and not written[-1].strip():
        written.pop()
    shown = list(lines)
    while shown and not shown[-1].strip():
        shown.pop()
    if [line.strip() for line in written] != [line.strip() for line in shown]:
        return lines
    return written + [""]


# A span of inline code or interpreted text, left as it is by escape_markup.
BACKTICKED = re.compile(r"(``.+?``|`[^`]+`)")


# A word ending in "_", as in "the with_* functions": a hyperlink reference to reStructuredText.
TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=\W|$)")


def escape_prose(text):
    """`fn(*args, **kwargs)` or `with_*` in prose are names, not markup."""
    return TRAILING_UNDERSCORE.sub(r"\\_", text.replace("*", "\\*"))


def escape_markup(line):
    parts = BACKTICKED.split(line)
    return "".join(part if i % 2 else escape_prose(part) for i, part in enumerate(parts))


def plain_text_to_rst(app, what, name, obj, options, lines):
    """Read a docstring written for help() as reStructuredText.

    help() shows a docstring as it is, so gochan's docstrings set an example off by indenting it.
    In reStructuredText that is a block quote unless the paragraph before ends with "::"; this
    adds the "::" (or a "::" paragraph of its own when the text before ends a sentence), and
    leaves blocks that are already literal, doctest blocks and field lists alone. A `*` in the
    prose (`*args`, `recv*`) and a word's trailing `_` are escaped: the docstrings use neither
    emphasis nor hyperlink references.
    """
    lines[:] = as_written(obj, lines)
    lines[:] = [line if INDENTED.match(line) else escape_markup(line) for line in lines]
    i = 0
    while i < len(lines):
        if (
            INDENTED.match(lines[i])
            and i >= 2
            and not lines[i - 1].strip()
            and lines[i - 2].strip()
            and not INDENTED.match(lines[i - 2])
            and not lines[i].lstrip().startswith(">>>")
        ):
            previous = lines[i - 2].rstrip()
            if not previous.endswith("::") and not previous.lstrip().startswith(":"):
                if previous.endswith(":"):
                    lines[i - 2] = previous + ":"
                else:
                    lines[i - 1 : i - 1] = ["", "::"]
                    i += 2
            # Skip the rest of the block.
            while i < len(lines) and (not lines[i].strip() or INDENTED.match(lines[i])):
                i += 1
        else:
            i += 1


# --- signatures from the stubs -----------------------------------------------------------------


def stub_functions():
    """{qualified name: ast.FunctionDef} for every function and method in gochan/__init__.pyi."""
    tree = ast.parse((ROOT / "gochan" / "__init__.pyi").read_text(encoding="utf-8"))
    found = {}

    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef):
                overloaded = any(
                    isinstance(d, ast.Name) and d.id.endswith("overload")
                    for d in node.decorator_list
                )
                key = f"{prefix}{node.name}"
                # Of several overloads, the first one shows the parameters best for a reader.
                if not (overloaded and key in found):
                    found[key] = node
            elif isinstance(node, ast.If):
                visit(node.body, prefix)

    visit(tree.body, "")
    return found


STUBS = stub_functions()
# Private aliases that the stub imports under another name.
ALIASES = re.compile(
    r"\b_(?:Context|Timer|Sync|Pattern)?(Callable|Callback)\b|\b_(?:Sync|Pattern)?Params\b"
)


def render(node, drop_first):
    args = node.args
    if drop_first:
        args = ast.arguments(
            posonlyargs=args.posonlyargs[1:] if args.posonlyargs else [],
            args=args.args[1:] if not args.posonlyargs else args.args,
            vararg=args.vararg,
            kwonlyargs=args.kwonlyargs,
            kw_defaults=args.kw_defaults,
            kwarg=args.kwarg,
            defaults=args.defaults,
        )
    text = f"({ast.unparse(args)})"
    returns = ast.unparse(node.returns) if node.returns else None
    text = ALIASES.sub(lambda m: "Callable" if m.group(1) else "ParamSpec", text)
    text = re.sub(r"\b_([A-Z]{1,2})\b", r"\1", text)  # _T -> T, _GP -> GP
    if returns is not None:
        returns = re.sub(r"\b_([A-Z]{1,2})\b", r"\1", ALIASES.sub("Callable", returns))
    return text, returns


def stub_signature(app, what, name, obj, options, signature, return_annotation):
    """Show the stub's parameters and types in place of the run-time signature."""
    if signature is None or not name.startswith("gochan.") or name.startswith("gochan.testing"):
        return None  # nothing to replace (a property, a class made only by gochan), or not stubbed
    qualname = name[len("gochan.") :]
    if what == "class":
        for method in ("__new__", "__init__"):
            node = STUBS.get(f"{qualname}.{method}")
            if node is not None:
                text, _ = render(node, drop_first=True)
                return text, None
        return None
    node = STUBS.get(qualname)
    if node is None:
        return None
    return render(node, drop_first=what == "method")


# --- links out of the documentation -----------------------------------------------------------


class LinksOutOfDocs(logging.Filter):
    """Drops the warnings about links to the repository's files outside the Sphinx project.

    On GitHub, where the Markdown pages are read too, a link to ../README.md or to the examples/
    folder works; Sphinx cannot resolve it, as those are no documents of its own. Only links to
    a file or folder that exists are let through (tests/test_docs.py checks the same); a link to
    anything missing, or to a heading missing from a page, still fails the build.
    """

    def filter(self, record):
        kind = (getattr(record, "type", ""), getattr(record, "subtype", ""))
        if kind != ("myst", "xref_missing"):
            return True
        message = record.getMessage()
        named = re.search(r"'([^']+)'$", message)
        if named is None:
            return True
        target = named.group(1)
        if message.startswith("Unknown source document"):
            path = pathlib.Path(target + ".md")  # an absolute path, its suffix dropped
        else:
            path = DOCS / target
        inside = path.resolve().is_relative_to(DOCS) and path.suffix == ".md"
        return not (path.exists() and not inside)


def setup(app):
    # First among the warning handler's filters, which count the warnings that -W fails on.
    for handler in logging.getLogger("sphinx").handlers:
        handler.filters.insert(0, LinksOutOfDocs())
    app.connect("source-read", add_navigation)
    app.connect("autodoc-process-docstring", plain_text_to_rst)
    app.connect("autodoc-process-signature", stub_signature)
    return {"parallel_read_safe": True}
