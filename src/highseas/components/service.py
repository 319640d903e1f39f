"""A user's pool components: the custom fields its customers carry (contract §5)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.components import repository
from highseas.components.schemas import ComponentCreate, ComponentUpdate
from highseas.errors import NotFound, ValidationFailed
from highseas.ids import parse_uuid
from highseas.models import Component, User
from highseas.pool_fields import POOL_FIELDS


async def list_components(session: AsyncSession, user: User) -> list[Component]:
    return await repository.of_user(session, user.id)


async def _check_name_free(
    session: AsyncSession, user: User, name: str, *, other_than: int | None = None
) -> None:
    if name in POOL_FIELDS:
        raise ValidationFailed.field(
            "name",
            f"组件名称 {name!r} 是客户自身的字段名（{'、'.join(POOL_FIELDS)}）：导入文件中这一列"
            "会填入该字段，组件无法填写，请换一个名称",
            reason="name_reserved",
        )
    if await repository.name_taken(session, user.id, name, other_than=other_than):
        raise ValidationFailed.field(
            "name", f"组件名称 {name!r} 已存在：同一用户的组件名称不能重复", reason="name_taken"
        )


async def create(session: AsyncSession, user: User, data: ComponentCreate) -> Component:
    await _check_name_free(session, user, data.name)
    component = Component(
        user_id=user.id,
        name=data.name,
        type=data.type,
        sort=data.sort,
        validate=list(data.validate_),
        status=data.status,
    )
    await repository.add(session, component)
    return component


async def owned(session: AsyncSession, user: User, component_id: str) -> Component:
    parsed = parse_uuid(component_id)
    found = [] if parsed is None else await repository.by_public_ids(session, user.id, [parsed])
    if not found:
        raise NotFound(f"组件 {component_id} 不存在", reason="component_not_found")
    return found[0]


async def update(
    session: AsyncSession, user: User, component_id: str, data: ComponentUpdate
) -> Component:
    component = await owned(session, user, component_id)
    if data.name is not None and data.name != component.name:
        await _check_name_free(session, user, data.name, other_than=component.id)
        component.name = data.name
    if data.type is not None and data.type != component.type:
        if await repository.has_values(session, component.id):
            raise ValidationFailed.field(
                "type",
                f"组件 {component.name} 已有客户数据，类型不能从 {component.type} "
                f"改为 {data.type}；请新建组件",
                reason="component_type_locked",
            )
        component.type = data.type
    if data.sort is not None:
        component.sort = data.sort
    if data.validate_ is not None:
        component.validate = list(data.validate_)
    if data.status is not None:
        component.status = data.status
    await session.flush()
    return component


async def delete(session: AsyncSession, user: User, component_ids: Sequence[str]) -> int:
    """Delete the listed components of this user and their values; unknown ids are 404 so a
    typo cannot pass as done."""
    parsed = {raw: parse_uuid(raw) for raw in component_ids}
    wanted = {p for p in parsed.values() if p is not None}
    found = await repository.by_public_ids(session, user.id, wanted)
    found_ids = {c.public_id for c in found}
    missing = [raw for raw, p in parsed.items() if p is None or p not in found_ids]
    if missing:
        raise NotFound(f"组件 {', '.join(missing)} 不存在", reason="component_not_found")
    await repository.delete_many(session, [c.id for c in found])
    return len(found)
