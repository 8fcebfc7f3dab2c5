"""The run-time signatures agree with the stubs, and every public name is documented.

inspect.signature() must work on every public function, class and method, C or Python (help(),
IDEs and Sphinx read it), and give the parameters that gochan/__init__.pyi declares: the same
names, in the same order, of the same kind (positional-only, keyword-only...), with a default
where the stub has one. mypy's stubtest checks the same against one interpreter in
`make typecheck`; this test runs on every CPython that pytest runs on.
"""

import ast
import inspect
import pathlib
import re
import textwrap
import types

import pytest

import gochan
import gochan.testing

ROOT = pathlib.Path(__file__).resolve().parent.parent
STUB = ROOT / "gochan" / "__init__.pyi"
API_PAGE = ROOT / "docs" / "api.rst"

#: Exception classes take any arguments, as Exception does; builtin exception types have no
#: signature to read, so these are left out of the signature checks.
EXCEPTIONS = {name for name in gochan.__all__ if isinstance(getattr(gochan, name), type)
              and issubclass(getattr(gochan, name), BaseException)} - {"Permanent"}

KIND = {
    "posonly": inspect.Parameter.POSITIONAL_ONLY,
    "arg": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "vararg": inspect.Parameter.VAR_POSITIONAL,
    "kwonly": inspect.Parameter.KEYWORD_ONLY,
    "kwarg": inspect.Parameter.VAR_KEYWORD,
}


def stub_parameters(node):
    """[(name, kind, has_default)] of a stub's function definition."""
    args = node.args
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    params = []
    for i, arg in enumerate(positional):
        kind = "posonly" if i < len(args.posonlyargs) else "arg"
        params.append((arg.arg, KIND[kind], i >= first_default))
    if args.vararg:
        params.append((args.vararg.arg, KIND["vararg"], False))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        params.append((arg.arg, KIND["kwonly"], default is not None))
    if args.kwarg:
        params.append((args.kwarg.arg, KIND["kwarg"], False))
    return params


def read_stub():
    """{qualified name: [FunctionDef, ...]} for the stub's functions and methods (several for
    an overloaded function), and {class name: {property names}}."""
    functions, properties = {}, {}

    def visit(body, owner):
        for node in body:
            if isinstance(node, ast.ClassDef):
                properties[node.name] = set()
                visit(node.body, node.name)
            elif isinstance(node, ast.FunctionDef):
                decorators = {ast.unparse(d) for d in node.decorator_list}
                if "property" in decorators:
                    properties[owner].add(node.name)
                    continue
                name = f"{owner}.{node.name}" if owner else node.name
                functions.setdefault(name, []).append(node)
            elif isinstance(node, ast.If):
                visit(node.body, owner)  # version-dependent members

    visit(ast.parse(STUB.read_text(encoding="utf-8")).body, None)
    return functions, properties


STUB_FUNCTIONS, STUB_PROPERTIES = read_stub()


def runtime_parameters(obj):
    return [(p.name, p.kind, p.default is not p.empty)
            for p in inspect.signature(obj).parameters.values()]


def self_as_positional(params):
    """A method's `self` is passed by position however it is declared (stubtest agrees)."""
    if params and params[0][0] == "self":
        return [("self", KIND["posonly"], False), *params[1:]]
    return params


def signature_cases():
    """(qualified name, run-time object, stub definitions, drop the stub's first parameter)."""
    cases = []
    for name in sorted(gochan.__all__):
        if name in EXCEPTIONS:
            continue
        obj = getattr(gochan, name)
        if not isinstance(obj, type):
            cases.append((name, obj, STUB_FUNCTIONS[name], False))
            continue
        # The class itself: its constructor, as the stub declares it.
        for constructor in ("__new__", "__init__"):
            if f"{name}.{constructor}" in STUB_FUNCTIONS:
                cases.append((name, obj, STUB_FUNCTIONS[f"{name}.{constructor}"], True))
                break
        for qualname, nodes in STUB_FUNCTIONS.items():
            owner, _, method = qualname.partition(".")
            if owner != name or (method.startswith("__") and method != "__call__"):
                continue
            cases.append((qualname, getattr(obj, method), nodes, False))
    return cases


CASES = signature_cases()


@pytest.mark.parametrize(("name", "obj", "nodes", "drop_first"), CASES,
                         ids=[case[0] for case in CASES])
def test_signature_matches_the_stub(name, obj, nodes, drop_first):
    if name == "CancelFunc.__call__":
        pytest.skip("a CancelFunc's parameters depend on what made it: tested on instances")
    if name in ("ChanStats", "Selected"):
        pytest.skip("a struct sequence's constructor, which gochan alone calls, reads as tuple's")
    actual = self_as_positional(runtime_parameters(obj))
    expected = [self_as_positional(stub_parameters(node)[1 if drop_first else 0:])
                for node in nodes]
    if len(expected) == 1:
        assert actual == expected[0], f"{name}: run time {actual}, stub {expected[0]}"
    else:
        # Overloads: each run-time parameter is in one of them, under the same name and kind.
        stubbed = {(n, kind) for overload in expected for n, kind, _ in overload}
        assert {(n, kind) for n, kind, _ in actual} >= stubbed, name


def test_every_public_callable_is_checked():
    """Nothing public is left out of the parametrized test above by mistake."""
    checked = {case[0] for case in CASES}
    for name in gochan.__all__:
        obj = getattr(gochan, name)
        if name in EXCEPTIONS:
            continue
        if isinstance(obj, type):
            public = [m for m in vars(obj) if not m.startswith("_") and callable(getattr(obj, m))
                      and m not in STUB_PROPERTIES.get(name, ())]
            missing = [m for m in public if f"{name}.{m}" not in checked]
            assert not missing, f"{name} methods with no stub: {missing}"
        else:
            assert name in checked


def test_cancel_functions_show_the_arguments_they_take():
    background = gochan.background()
    _, cancel = gochan.with_cancel(background)
    _, cancel_cause = gochan.with_cancel_cause(background)
    assert str(inspect.signature(cancel)) == "()"
    assert str(inspect.signature(cancel_cause)) == "(cause=None)"
    cancel()
    cancel_cause()


def test_after_func_stop_takes_no_argument():
    ctx, cancel = gochan.with_cancel(gochan.background())
    stop = ctx.after_func(lambda: None)
    assert str(inspect.signature(stop)) == "()"
    assert stop()
    cancel()


def test_c_signatures_read_naturally():
    """A few spelled out, as help() shows them."""
    assert str(inspect.signature(gochan.Chan)) == "(capacity=0)"
    assert str(inspect.signature(gochan.Chan.send)) == "(self, /, value, *, timeout=None, ctx=None)"
    assert str(inspect.signature(gochan.select)) == (
        "(*cases, default=False, timeout=None, ctx=None, biased=False)"
    )
    assert str(inspect.signature(gochan.Limiter.allow)) == "(self, /, n=1, *, now=None)"


# --- documentation -----------------------------------------------------------------------------

#: An example in a docstring: an indented line after a blank line, or a doctest prompt.
EXAMPLE = re.compile(r"\n\s*\n[ \t]+\S|>>> ")


def docstring_as_written(obj):
    """obj's docstring, each line indented as it is relative to the docstring in the source.

    inspect.getdoc() removes the indentation common to the lines after the first (and Python
    3.13 already does when it compiles), which also removes an example's when the example is all
    there is after the summary line. So a Python object's docstring is read from its source.
    """
    target = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        # Defined in C: the docstring's lines start at column 0.
        return obj.__doc__ if isinstance(obj.__doc__, str) else None
    node = ast.parse(source).body[0]
    doc = ast.get_docstring(node, clean=False)
    if doc is None:
        return None
    base = 4  # the body of the def or class statement, dedented to column 0
    return "\n".join(line[base:] if not line[:base].strip() else line.lstrip()
                     for line in doc.splitlines())


def documented():
    """(name, object) for every public name, and every public method of a public class."""
    found = []
    for name in sorted(gochan.__all__):
        obj = getattr(gochan, name)
        found.append((name, obj))
        if isinstance(obj, type) and name not in EXCEPTIONS:
            for member, value in vars(obj).items():
                if not member.startswith("_"):
                    found.append((f"{name}.{member}", getattr(obj, member)))
    for name in gochan.testing.__all__:
        found.append((f"testing.{name}", getattr(gochan.testing, name)))
    return found


@pytest.mark.parametrize(("name", "obj"), documented(), ids=[n for n, _ in documented()])
def test_public_name_has_a_docstring_with_an_example(name, obj):
    doc = docstring_as_written(obj)
    if isinstance(obj, types.MemberDescriptorType):
        return  # a slot or a struct sequence's field, described by its class
    if isinstance(obj, (property, types.GetSetDescriptorType)) or name in EXCEPTIONS:
        # A property or an exception needs no example of its own beyond its class's.
        assert doc, f"{name} has no docstring"
        return
    assert doc and EXAMPLE.search(doc), f"{name}: no docstring with an example\n{doc}"


def test_api_reference_lists_every_public_name():
    page = API_PAGE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto(?:class|function|exception):: gochan\.(\w+)",
                                page, flags=re.M))
    assert documented == set(gochan.__all__), (
        f"missing from docs/api.rst: {sorted(set(gochan.__all__) - documented)}; "
        f"not public: {sorted(documented - set(gochan.__all__))}"
    )
