using System;

namespace Orleans.LIFL.CodeGenerator;

internal enum ReturnKind
{
    Task,
    TaskOfT,
    ValueTask,
    ValueTaskOfT,
}

internal sealed record ParameterModel(string Type, string Name, bool KnownShallow) : IEquatable<ParameterModel>;

internal sealed record MethodModel(
    string Name,
    string DeclaringInterface,
    string DeclaringInterfaceTypeOf,
    ReturnKind ReturnKind,
    string? ResultType,
    EquatableArray<ParameterModel> Parameters,
    string Options,
    string? TimeoutLiteral,
    string Id) : IEquatable<MethodModel>;

internal sealed record InterfaceModel(
    string FullName,
    string SafeName,
    bool IsExtension,
    EquatableArray<MethodModel> Methods) : IEquatable<InterfaceModel>;

internal enum ConstructorArgumentKind
{
    Service,
    PersistentState,
    GrainContext,
}

internal sealed record ConstructorArgumentModel(
    ConstructorArgumentKind Kind,
    string Type,
    string? StateType,
    string? StateName,
    string? StorageName) : IEquatable<ConstructorArgumentModel>;

internal sealed record GrainClassModel(
    string FullName,
    EquatableArray<StringItem> Interfaces,
    EquatableArray<ConstructorArgumentModel> ConstructorArguments) : IEquatable<GrainClassModel>;

internal enum MemberAccess
{
    /// <summary>Read and written through an UnsafeAccessor to the field (or property backing field).</summary>
    Field,

    /// <summary>A property with an accessible getter and setter.</summary>
    Property,
}

internal sealed record SerializableMemberModel(
    uint Id,
    string Name,
    string Type,
    bool KnownShallow,
    MemberAccess Access,
    string DeclaringType) : IEquatable<SerializableMemberModel>;

internal sealed record SerializableTypeModel(
    string FullName,
    string SafeName,
    bool IsValueType,
    bool IsAbstract,
    bool HasParameterlessConstructor,
    string TypeParameters,
    string Constraints,
    string? OpenGenericTypeOf,
    EquatableArray<SerializableMemberModel> Members) : IEquatable<SerializableTypeModel>;

internal sealed record StringItem(string Value) : IEquatable<StringItem>;
