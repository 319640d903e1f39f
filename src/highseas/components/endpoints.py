from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from highseas.components import service
from highseas.components.schemas import (
    ComponentCreate,
    ComponentDelete,
    ComponentRead,
    ComponentUpdate,
    DeletedComponents,
)
from highseas.dependencies import SessionDep
from highseas.envelope import Envelope, ok
from highseas.models import Component
from highseas.request_input import JsonInputRoute
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(
    prefix="/agent-api/user/{user_id}", tags=["pool components"], route_class=JsonInputRoute
)


def _read(component: Component) -> ComponentRead:
    return ComponentRead(
        id=component.public_id,
        name=component.name,
        type=component.type,
        sort=component.sort,
        validate_=component.validate,
        status=component.status,
        created_at=component.created_at,
        updated_at=component.updated_at,
    )


@router.get("/customer/create", response_model=Envelope[list[ComponentRead]])
async def list_components(user: OwnedUserDep, session: SessionDep) -> Envelope[list[ComponentRead]]:
    """The user's pool components (公海模板), by ``sort``: their ids are the filter ids."""
    components = await service.list_components(session, user)
    return ok([_read(c) for c in components])


@router.post("/component", response_model=Envelope[ComponentRead])
async def create_component(
    body: ComponentCreate, user: OwnedUserDep, session: SessionDep
) -> Envelope[ComponentRead]:
    """Add a component; its name is unique within the user."""
    return ok(_read(await service.create(session, user, body)), "创建成功")


@router.put("/component/{component_id}", response_model=Envelope[ComponentRead])
async def update_component(
    body: ComponentUpdate,
    component_id: Annotated[str, Path(description="组件 id")],
    user: OwnedUserDep,
    session: SessionDep,
) -> Envelope[ComponentRead]:
    """Change a component (only the fields given)."""
    return ok(_read(await service.update(session, user, component_id, body)), "修改成功")


@router.delete("/component", response_model=Envelope[DeletedComponents])
async def delete_components(
    body: Annotated[ComponentDelete, Body()], user: OwnedUserDep, session: SessionDep
) -> Envelope[DeletedComponents]:
    """Delete components (``deletes``: ids) with their values."""
    deleted = await service.delete(session, user, body.deletes)
    return ok(DeletedComponents(deleted=deleted), "删除成功")
