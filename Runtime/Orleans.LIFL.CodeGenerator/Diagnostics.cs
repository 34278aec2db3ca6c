using Microsoft.CodeAnalysis;

namespace Orleans.LIFL.CodeGenerator;

internal static class Diagnostics
{
    private const string Category = "Orleans.LIFL";

    public static readonly DiagnosticDescriptor BadReturnType = new(
        "LIFL001", "Grain method must return a task",
        "Grain interface method {0} returns {1}; grain methods must return Task, Task<T>, ValueTask or ValueTask<T>",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor GenericMethod = new(
        "LIFL002", "Generic grain methods are not supported",
        "Grain interface method {0} is generic; generic grain methods are not supported",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor ByRefParameter = new(
        "LIFL003", "ref/out/in parameters are not supported",
        "Parameter {1} of grain interface method {0} is passed by reference; grain calls pass arguments by value",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor GenericInterface = new(
        "LIFL004", "Generic grain interfaces and classes are not supported",
        "{0} is generic; generic grain interfaces and grain classes are not supported",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor OneWayWithResult = new(
        "LIFL005", "One-way methods cannot return a value",
        "Grain interface method {0} is [OneWay] but returns a value; one-way methods return Task or ValueTask",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor NotAMethod = new(
        "LIFL006", "Grain interfaces hold only methods",
        "Grain interface {0} declares {1}; grain interfaces may only declare methods",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor AmbiguousConstructor = new(
        "LIFL007", "Grain constructor is ambiguous",
        "Grain class {0} has several public constructors with the most parameters; keep one",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor Inaccessible = new(
        "LIFL008", "Type is not accessible to generated code",
        "{0} is private or protected; grain classes and [GenerateSerializer] types must be internal or public",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor PropertyWithoutSetter = new(
        "LIFL009", "[Id] property cannot be copied",
        "[Id] property {0}.{1} is neither an auto-property nor has an accessible setter",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor ForeignBase = new(
        "LIFL010", "Serializable base type from another assembly",
        "[GenerateSerializer] type {0} derives from {1}, which has [Id] members and is declared in another assembly; this is not supported",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor DuplicateId = new(
        "LIFL011", "Duplicate [Id]",
        "[Id({1})] is used twice in {0} (ids must be unique across a type and its base types)",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
}
