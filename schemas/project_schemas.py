"""Project, file and message shapes."""

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, field_validator

from schemas.common import Strict, example

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
MAX_PATH_LENGTH = 255
MAX_PATH_SEGMENTS = 10
MAX_FILES_ON_CREATE = 500
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in range(10)
}


def _file_path(value: str) -> str:
    """Relative POSIX path of `[A-Za-z0-9._-]` segments; never absolute, never escaping."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"path is longer than {MAX_PATH_LENGTH} characters")
    if value.startswith("/") or "\\" in value or "\x00" in value:
        raise ValueError("path must be relative POSIX, without backslashes or NUL")
    segments = value.split("/")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise ValueError(f"path has more than {MAX_PATH_SEGMENTS} segments")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError("path segments cannot be empty, '.' or '..'")
        if not _SEGMENT.fullmatch(segment):
            raise ValueError("path segments may hold only letters, digits, '.', '_' and '-'")
        # Unpacked from an export, `.git/hooks/…` would run on the user's next git command.
        if segment.lower() == ".git":
            raise ValueError("path cannot enter a .git directory")
        if segment.split(".", 1)[0].upper() in WINDOWS_RESERVED or segment.endswith("."):
            raise ValueError(f"{segment!r} cannot be a file name on Windows")
    return value


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError("must be an http(s) URL")
    return value


FilePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        description="Relative POSIX path: up to 10 segments of letters, digits, '.', '_' and "
        "'-'; no leading '/', no '.' or '..' segments, no '.git' directory, no name Windows "
        "reserves (CON, NUL, COM1, … with any extension) and none ending in '.'",
        json_schema_extra={"pattern": r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,9}$"},
    ),
    AfterValidator(_file_path),
]
WebUrl = Annotated[
    str, Field(max_length=2048, json_schema_extra={"format": "uri"}), AfterValidator(_web_url)
]
ProjectName = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=2000)]
Language = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9#+._-]+$")]
# Bytes are checked by the service (1 MiB of UTF-8); this only stops absurd input early.
Content = Annotated[str, Field(max_length=1024 * 1024)]


class FileWrite(Strict):
    model_config = example(path="src/main.py", content="print('hello')\n", language="python")
    path: FilePath
    content: Content
    language: Language | None = None


class ProjectCreate(Strict):
    model_config = example(
        name="Shop",
        description="A small shop",
        files=[{"path": "README.md", "content": "# Shop\n"}],
    )
    name: ProjectName
    description: Description = ""
    files: list[FileWrite] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("name cannot be blank")
        return name

    @field_validator("files", mode="before")
    @classmethod
    def _few_enough(cls, files: object) -> object:
        # One entry past the cap is enough for the service to answer `too_many_files`, so
        # validation stops there whatever the list's length.
        if isinstance(files, list) and len(files) > MAX_FILES_ON_CREATE:
            return files[: MAX_FILES_ON_CREATE + 1]
        return files

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, files: list[FileWrite]) -> list[FileWrite]:
        if len(files) > MAX_FILES_ON_CREATE:
            return files  # refused as too many by the service
        if len({file.path for file in files}) != len(files):
            raise ValueError("file paths must be unique")
        return files


class ProjectUpdate(Strict):
    model_config = example(
        description="A small shop with a cart", github_repo_url="https://github.com/ada/shop"
    )
    name: ProjectName | None = None
    description: Description | None = None
    github_repo_url: WebUrl | None = None
    vercel_url: WebUrl | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str | None) -> str | None:
        if name is not None and not name.strip():
            raise ValueError("name cannot be blank")
        return name


class FileRead(BaseModel):
    path: str
    content: str
    language: str
    size: int = Field(description="Bytes of UTF-8 content")
    updated_at: datetime


class ProjectSummaryRead(BaseModel):
    id: str
    name: str
    description: str
    file_count: int
    github_repo_url: str | None
    vercel_url: str | None
    created_at: datetime
    updated_at: datetime


class ProjectRead(ProjectSummaryRead):
    files: list[FileRead]


MessageRole = Literal["user", "assistant", "system"]


class MessageCreate(Strict):
    model_config = example(role="user", content="Add a cart to the shop")
    # Clients speak as the user only: `assistant` and `system` messages are the server's (the
    # agentic job reads the conversation as context, so they would be a way to instruct it).
    role: Literal["user"] = "user"
    content: Annotated[str, Field(min_length=1, max_length=32_000)]


class MessageRead(BaseModel):
    id: str
    role: MessageRole
    content: str
    created_at: datetime


ProjectSort = Literal["-updated_at", "updated_at", "name", "-name", "created_at", "-created_at"]
