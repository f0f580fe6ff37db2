"""The merged view of an image's final filesystem, built from the layers' recorded entries.

Called by :mod:`kubegate.inventory.image`; extractors read it through :class:`ImageView`. Layers
are applied bottom first as an OCI runtime would (image-spec layer.md): a layer's whiteouts
(``.wh.NAME``) and opaque markers (``.wh..wh..opq``) remove what lower layers put there, then its
entries are added, upper ones replacing lower ones. Symlinks and hardlinks are followed inside
the image (never outside its root) with loop protection. A file whose content the walker did not
keep (reached only through a link) raises :class:`Uncaptured` so the caller can read it in a
second, targeted pass over that one layer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from kubegate.errors import InventoryError
from kubegate.inventory.walker import (
    DIR,
    FILE,
    HARDLINK,
    OPAQUE,
    SYMLINK,
    WHITEOUT,
    LayerContent,
)
from kubegate.models import Digest

#: Linux gives up after 40 symlinks in one resolution (ELOOP, path_resolution(7)).
MAX_SYMLINKS = 40


class Uncaptured(Exception):  # a signal to the caller, never shown to users
    """A needed file exists in ``layer`` at ``path`` but its content was not read."""

    def __init__(self, layer: int, path: str) -> None:
        super().__init__(f"layer {layer}: {path}")
        self.layer = layer
        self.path = path


class _Dir:
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}


class _File:
    __slots__ = ("data", "layer", "path", "previous")

    def __init__(self, data: bytes | None, layer: int, path: str, previous: _File | None) -> None:
        self.data = data
        #: The layer and path where this content is stored (a hardlink's target's).
        self.layer = layer
        self.path = path
        self.previous = previous


class _Link:
    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target


class _Other:
    __slots__ = ()


_Node = _Dir | _File | _Link | _Other


class ImageView:
    """Read-only access to the final filesystem for extractors (paths relative to ``/``)."""

    def __init__(self, layers: Sequence[LayerContent]) -> None:
        self.digests: tuple[Digest, ...] = tuple(layer.digest for layer in layers)
        self._root = _Dir()
        for index, layer in enumerate(layers):
            self._apply(index, layer)

    # -- building ---------------------------------------------------------------------------

    def _apply(self, index: int, layer: LayerContent) -> None:
        # Whiteouts hide lower layers only, so they go first (image-spec layer.md "Whiteouts").
        for entry in layer.entries:
            if entry.kind == WHITEOUT:
                parent, name = self._literal_parent(entry.path)
                if parent is not None:
                    parent.children.pop(name, None)
            elif entry.kind == OPAQUE:
                node = self._literal(entry.path)
                if isinstance(node, _Dir):
                    node.children.clear()
        for entry in layer.entries:
            kind = entry.kind
            if kind in (WHITEOUT, OPAQUE):
                continue
            parent_path, _, name = entry.path.rpartition("/")
            parent = self._ensure_dir(parent_path)
            existing = parent.children.get(name)
            if kind == DIR:
                if not isinstance(existing, _Dir):
                    parent.children[name] = _Dir()
            elif kind == FILE:
                previous = existing if isinstance(existing, _File) else None
                parent.children[name] = _File(entry.data, index, entry.path, previous)
            elif kind == SYMLINK:
                parent.children[name] = _Link(entry.target or "")
            elif kind == HARDLINK:
                target = self._literal(entry.target or "")
                if isinstance(target, _File):
                    previous = existing if isinstance(existing, _File) else None
                    parent.children[name] = _File(target.data, target.layer, target.path, previous)
                else:
                    parent.children[name] = _Other()  # dangling hardlink: nothing to read
            else:
                parent.children[name] = _Other()

    def _ensure_dir(self, path: str) -> _Dir:
        node = self._root
        if not path:
            return node
        for name in path.split("/"):
            child = node.children.get(name)
            if not isinstance(child, _Dir):
                # An upper directory replaces a lower non-directory, as overlayfs does.
                child = _Dir()
                node.children[name] = child
            node = child
        return node

    def _literal(self, path: str) -> _Node | None:
        node: _Node = self._root
        for name in path.split("/") if path else ():
            if not isinstance(node, _Dir):
                return None
            child = node.children.get(name)
            if child is None:
                return None
            node = child
        return node

    def _literal_parent(self, path: str) -> tuple[_Dir | None, str]:
        parent_path, _, name = path.rpartition("/")
        parent = self._literal(parent_path)
        return (parent if isinstance(parent, _Dir) else None), name

    # -- resolution ---------------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[str, _Node] | None:
        """Follow symlinks in every component; ``None`` if absent, InventoryError on a loop."""
        pending = deque(path.split("/"))
        current: list[str] = []
        node: _Node = self._root
        hops = 0
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                # The image root is its own parent: links never lead outside the image.
                if current:
                    current.pop()
                node = self._literal("/".join(current)) or self._root
                continue
            if not isinstance(node, _Dir):
                return None
            child = node.children.get(name)
            if child is None:
                return None
            if isinstance(child, _Link):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise InventoryError(f"/{path}: too many levels of symbolic links")
                target = child.target
                if target.startswith("/"):
                    current = []
                    node = self._root
                pending.extendleft(reversed(target.split("/")))
                continue
            current.append(name)
            node = child
        return "/".join(current), node

    def _file(self, path: str) -> _File | None:
        found = self._resolve(path)
        if found is None or not isinstance(found[1], _File):
            return None
        node = found[1]
        if node.data is None:
            raise Uncaptured(node.layer, node.path)
        return node

    # -- what extractors call -------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether ``path`` resolves to anything (a loop raises InventoryError)."""
        return self._resolve(path) is not None

    def read(self, path: str) -> bytes | None:
        """The content of the file at ``path`` (links followed); ``None`` if absent."""
        node = self._file(path)
        return None if node is None else node.data

    def layer_of(self, path: str) -> Digest | None:
        """Digest of the layer that wrote the current content of ``path``."""
        node = self._file(path)
        return None if node is None else self.digests[node.layer]

    def history(self, path: str) -> list[tuple[Digest, bytes]]:
        """Every content ``path`` had, bottom layer first, since it was last created."""
        node = self._file(path)
        versions: list[tuple[Digest, bytes]] = []
        while node is not None:
            if node.data is None:
                raise Uncaptured(node.layer, node.path)
            versions.append((self.digests[node.layer], node.data))
            node = node.previous
        versions.reverse()
        return versions

    def captured(self) -> Iterator[str]:
        """Paths of the regular files whose content (or reduced record) was kept, sorted.

        Walks directories only, never symlinks: each file is seen once under its real path.
        """
        stack: list[tuple[str, _Dir]] = [("", self._root)]
        while stack:
            prefix, directory = stack.pop()
            subdirs: list[tuple[str, _Dir]] = []
            for name in sorted(directory.children):
                node = directory.children[name]
                path = f"{prefix}/{name}" if prefix else name
                if isinstance(node, _File) and node.data is not None:
                    yield path
                elif isinstance(node, _Dir):
                    subdirs.append((path, node))
            stack.extend(reversed(subdirs))

    def listdir(self, path: str) -> list[str]:
        """Sorted names in the directory at ``path``; empty if absent or not a directory."""
        found = self._resolve(path)
        if found is None or not isinstance(found[1], _Dir):
            return []
        return sorted(found[1].children)
