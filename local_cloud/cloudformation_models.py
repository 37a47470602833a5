"""Resource types moto's CloudFormation does not know, added by the local cloud in one way.

moto looks a template's resource type up among the direct subclasses of its ``CloudFormationModel`` (held
by weak references) and caches what it found. A model added here is therefore a direct subclass of both
``ResourceModel`` (first, for what every such model repeats: its type, its name property, its physical id
and its ``Fn::GetAtt`` attributes) and ``CloudFormationModel``, and ``register`` keeps the class alive and
makes moto look again. Create, update and delete stay each model's own: moto skips an update or delete a
model does not define, so ``ResourceModel`` gives no default; a model that CloudFormation updates in place
also derives from ``UpdatedInPlace`` (before ``CloudFormationModel``), which holds moto's update signature.
"""

from __future__ import annotations

from typing import Any, ClassVar

_models: dict[str, type] = {}


class ResourceModel:
    """What a resource model shares; ``TYPE`` is the CloudFormation type it answers for."""

    TYPE: ClassVar[str]
    # The property that names the resource (moto names one without it <stack>-<logical id>-<suffix>, as AWS
    # does); "" for a type that has none.
    NAME_PROPERTY: ClassVar[str] = ""
    # Fn::GetAtt attribute -> the instance attribute that holds its value; any other is refused, as on AWS.
    ATTRIBUTES: ClassVar[dict[str, str]] = {}

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return getattr(self, self.ATTRIBUTES[attribute_name])


class UpdatedInPlace:
    """moto's update hook for a model whose update changes the same resource: it hands the model's
    ``update`` the resource as it was and the template's new properties."""

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> Any:
        return cls.update(original_resource, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update(cls, original: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
        raise NotImplementedError(f"{cls.__name__} does not say how it is updated")


def registered(resource_type: str) -> bool:
    """Whether a model for ``resource_type`` was added (each adder checks before it defines its class)."""
    return resource_type in _models


def register(model: type) -> None:
    """Make moto's CloudFormation find ``model`` for its type from now on."""
    from moto.cloudformation import parsing

    _models[model.cloudformation_type()] = model  # type: ignore[attr-defined]
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
