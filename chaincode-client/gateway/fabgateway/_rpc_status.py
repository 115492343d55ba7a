"""``google.rpc.Status``, built from its three-field definition in a private descriptor pool.

The Gateway puts its per-endpoint errors in the ``grpc-status-details-bin`` trailer as a
serialized ``google.rpc.Status`` (code = 1, message = 2, repeated google.protobuf.Any details = 3).
Building the class here avoids a dependency on googleapis-common-protos, whose generated code
pins protobuf runtimes newer than hyperledger-fabric-protos accepts.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto


def _build() -> Any:
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)

    status_file = descriptor_pb2.FileDescriptorProto(
        name="fabgateway/google_rpc_status.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=[any_file.name],
    )
    message = status_file.message_type.add(name="Status")
    message.field.add(name="code", number=1, type=_FIELD.TYPE_INT32, label=_FIELD.LABEL_OPTIONAL)
    message.field.add(
        name="message", number=2, type=_FIELD.TYPE_STRING, label=_FIELD.LABEL_OPTIONAL
    )
    message.field.add(
        name="details",
        number=3,
        type=_FIELD.TYPE_MESSAGE,
        type_name=".google.protobuf.Any",
        label=_FIELD.LABEL_REPEATED,
    )
    pool.Add(status_file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


Status: Any = _build()
"""The ``google.rpc.Status`` message class."""
