using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Orleans.LIFL.CodeGenerator;

/// <summary>Turns symbols into the plain models the emitter writes code from, collecting diagnostics on the way.</summary>
internal static class ModelBuilder
{
    public static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    public static string Display(ITypeSymbol type) => type.ToDisplayString(TypeFormat);

    public static string MetadataName(ITypeSymbol type)
    {
        var parts = new Stack<string>();
        for (var t = type; t is not null; t = t.ContainingType)
        {
            parts.Push(t.MetadataName);
        }

        var name = string.Join("+", parts);
        var ns = type.ContainingNamespace;
        return ns is null || ns.IsGlobalNamespace ? name : ns.ToDisplayString() + "." + name;
    }

    public static string SafeName(ITypeSymbol type)
    {
        var chars = MetadataName(type).Select(c => char.IsLetterOrDigit(c) ? c : '_').ToArray();
        return new string(chars);
    }

    public static bool IsAddressableInterface(INamedTypeSymbol type) =>
        type.TypeKind == TypeKind.Interface
        && !Names.IsMarker(MetadataName(type))
        && type.AllInterfaces.Any(i => MetadataName(i) == Names.Addressable);

    private static bool Implements(INamedTypeSymbol type, string interfaceName) =>
        MetadataName(type) == interfaceName || type.AllInterfaces.Any(i => MetadataName(i) == interfaceName);

    private static bool HasAttribute(ISymbol symbol, string attributeName) =>
        symbol.GetAttributes().Any(a => a.AttributeClass is { } c && MetadataName(c) == attributeName);

    private static AttributeData? GetAttribute(ISymbol symbol, string attributeName) =>
        symbol.GetAttributes().FirstOrDefault(a => a.AttributeClass is { } c && MetadataName(c) == attributeName);

    /// <summary>Types whose values never need copying, decided at compile time (the runtime decides the rest).</summary>
    public static bool IsKnownShallow(ITypeSymbol type)
    {
        if (type.TypeKind == TypeKind.Enum)
        {
            return true;
        }

        switch (type.SpecialType)
        {
            case SpecialType.System_Boolean:
            case SpecialType.System_Char:
            case SpecialType.System_SByte:
            case SpecialType.System_Byte:
            case SpecialType.System_Int16:
            case SpecialType.System_UInt16:
            case SpecialType.System_Int32:
            case SpecialType.System_UInt32:
            case SpecialType.System_Int64:
            case SpecialType.System_UInt64:
            case SpecialType.System_Single:
            case SpecialType.System_Double:
            case SpecialType.System_Decimal:
            case SpecialType.System_String:
            case SpecialType.System_DateTime:
            case SpecialType.System_IntPtr:
            case SpecialType.System_UIntPtr:
                return true;
        }

        if (type is not INamedTypeSymbol named)
        {
            return false;
        }

        var name = MetadataName(named.OriginalDefinition);
        if (name is "System.Guid" or "System.TimeSpan" or "System.DateTimeOffset" or "System.DateOnly" or "System.TimeOnly"
            or "Orleans.LIFL.GrainId" or "Orleans.LIFL.GrainType" or "Orleans.LIFL.SiloAddress" or "Orleans.LIFL.Invocation.Unit"
            or Names.ImmutableWrapper)
        {
            return true;
        }

        if (name == "System.Nullable`1")
        {
            return IsKnownShallow(named.TypeArguments[0]);
        }

        if (HasAttribute(named, Names.Immutable))
        {
            return true;
        }

        return named.TypeKind == TypeKind.Interface && Implements(named, Names.Addressable);
    }

    public static Analysis<InterfaceModel>? AnalyzeInterface(INamedTypeSymbol iface)
    {
        if (!IsAddressableInterface(iface))
        {
            return null;
        }

        var diagnostics = new List<DiagnosticInfo>();
        if (iface.IsGenericType)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GenericInterface, iface, iface.Name));
            return new Analysis<InterfaceModel>(null, diagnostics.ToEquatableArray());
        }

        var methods = new List<MethodModel>();
        var seen = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        foreach (var declaring in new[] { iface }.Concat(iface.AllInterfaces))
        {
            if (Names.IsMarker(MetadataName(declaring)))
            {
                continue;
            }

            foreach (var member in declaring.GetMembers())
            {
                if (member.IsStatic)
                {
                    continue;
                }

                switch (member)
                {
                    case IMethodSymbol { MethodKind: MethodKind.Ordinary } method when seen.Add(method):
                        if (AnalyzeMethod(declaring, method, diagnostics) is { } model)
                        {
                            methods.Add(model);
                        }

                        break;
                    case IPropertySymbol or IEventSymbol:
                        diagnostics.Add(DiagnosticInfo.Create(Diagnostics.NotAMethod, member, declaring.Name, member.Name));
                        break;
                }
            }
        }

        var isExtension = Implements(iface, Names.GrainExtension);
        return new Analysis<InterfaceModel>(
            new InterfaceModel(Display(iface), SafeName(iface), isExtension, methods.ToEquatableArray()),
            diagnostics.ToEquatableArray());
    }

    private static MethodModel? AnalyzeMethod(INamedTypeSymbol declaring, IMethodSymbol method, List<DiagnosticInfo> diagnostics)
    {
        var displayName = declaring.Name + "." + method.Name;
        var ok = true;
        if (method.IsGenericMethod)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GenericMethod, method, displayName));
            ok = false;
        }

        foreach (var parameter in method.Parameters.Where(p => p.RefKind != RefKind.None))
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.ByRefParameter, parameter, displayName, parameter.Name));
            ok = false;
        }

        ReturnKind kind;
        string? resultType = null;
        var returnType = method.ReturnType as INamedTypeSymbol;
        switch (returnType is null ? "" : MetadataName(returnType.OriginalDefinition))
        {
            case "System.Threading.Tasks.Task":
                kind = ReturnKind.Task;
                break;
            case "System.Threading.Tasks.Task`1":
                kind = ReturnKind.TaskOfT;
                resultType = Display(returnType!.TypeArguments[0]);
                break;
            case "System.Threading.Tasks.ValueTask":
                kind = ReturnKind.ValueTask;
                break;
            case "System.Threading.Tasks.ValueTask`1":
                kind = ReturnKind.ValueTaskOfT;
                resultType = Display(returnType!.TypeArguments[0]);
                break;
            default:
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.BadReturnType, method, displayName, method.ReturnType.ToDisplayString()));
                return null;
        }

        var options = new List<string>();
        if (HasAttribute(method, Names.OneWay))
        {
            options.Add("OneWay");
            if (resultType is not null)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.OneWayWithResult, method, displayName));
                ok = false;
            }
        }

        if (HasAttribute(method, Names.ReadOnly))
        {
            options.Add("ReadOnly");
        }

        if (HasAttribute(method, Names.AlwaysInterleave))
        {
            options.Add("AlwaysInterleave");
        }

        string? timeout = null;
        if (GetAttribute(method, Names.ResponseTimeout) is { } timeoutAttribute
            && timeoutAttribute.ConstructorArguments.FirstOrDefault().Value is string timeoutText)
        {
            timeout = SymbolDisplay.FormatLiteral(timeoutText, quote: true);
        }

        if (!ok)
        {
            return null;
        }

        var optionsLiteral = options.Count == 0
            ? "global::Orleans.LIFL.Invocation.InvokeMethodOptions.None"
            : string.Join(" | ", options.Select(o => "global::Orleans.LIFL.Invocation.InvokeMethodOptions." + o));
        var id = MetadataName(declaring) + "." + method.Name + "(" + string.Join(",", method.Parameters.Select(p => p.Type.ToDisplayString())) + ")";
        var parameters = method.Parameters
            .Select(p => new ParameterModel(Display(p.Type), p.Name, IsKnownShallow(p.Type)))
            .ToEquatableArray();
        return new MethodModel(
            method.Name,
            Display(declaring),
            Display(declaring),
            kind,
            resultType,
            parameters,
            optionsLiteral,
            timeout,
            SymbolDisplay.FormatLiteral(id, quote: true));
    }

    public static Analysis<GrainClassModel>? AnalyzeGrainClass(INamedTypeSymbol type)
    {
        if (type.TypeKind != TypeKind.Class || type.IsAbstract || type.IsStatic || !DerivesFrom(type, Names.GrainBase))
        {
            return null;
        }

        var diagnostics = new List<DiagnosticInfo>();
        if (type.IsGenericType)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GenericInterface, type, type.Name));
            return new Analysis<GrainClassModel>(null, diagnostics.ToEquatableArray());
        }

        if (!IsAccessible(type))
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.Inaccessible, type, type.ToDisplayString()));
            return new Analysis<GrainClassModel>(null, diagnostics.ToEquatableArray());
        }

        var interfaces = type.AllInterfaces
            .Where(i => IsAddressableInterface(i) && Implements(i, Names.Grain))
            .Select(i => new StringItem(Display(i)))
            .ToEquatableArray();

        var constructors = type.InstanceConstructors
            .Where(c => c.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal or Accessibility.ProtectedOrInternal)
            .ToList();
        var marked = constructors.Where(c => HasAttribute(c, Names.ActivatorUtilitiesConstructor)).ToList();
        IMethodSymbol? constructor;
        if (marked.Count == 1)
        {
            constructor = marked[0];
        }
        else
        {
            var most = constructors.Count == 0 ? 0 : constructors.Max(c => c.Parameters.Length);
            var candidates = constructors.Where(c => c.Parameters.Length == most).ToList();
            if (candidates.Count != 1)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.AmbiguousConstructor, type, type.Name));
                return new Analysis<GrainClassModel>(null, diagnostics.ToEquatableArray());
            }

            constructor = candidates[0];
        }

        var arguments = new List<ConstructorArgumentModel>();
        foreach (var parameter in constructor.Parameters)
        {
            if (GetAttribute(parameter, Names.PersistentState) is { } state)
            {
                var stateName = state.ConstructorArguments.Length > 0 ? state.ConstructorArguments[0].Value as string : null;
                var storageName = state.ConstructorArguments.Length > 1 ? state.ConstructorArguments[1].Value as string : null;
                var stateType = parameter.Type is INamedTypeSymbol { IsGenericType: true } generic ? Display(generic.TypeArguments[0]) : "object";
                arguments.Add(new ConstructorArgumentModel(
                    ConstructorArgumentKind.PersistentState,
                    Display(parameter.Type),
                    stateType,
                    SymbolDisplay.FormatLiteral(stateName ?? parameter.Name, quote: true),
                    storageName is null ? "null" : SymbolDisplay.FormatLiteral(storageName, quote: true)));
            }
            else if (MetadataName(parameter.Type) == Names.GrainContext)
            {
                arguments.Add(new ConstructorArgumentModel(ConstructorArgumentKind.GrainContext, Display(parameter.Type), null, null, null));
            }
            else
            {
                arguments.Add(new ConstructorArgumentModel(ConstructorArgumentKind.Service, Display(parameter.Type), null, null, null));
            }
        }

        return new Analysis<GrainClassModel>(
            new GrainClassModel(Display(type), interfaces, arguments.ToEquatableArray()),
            diagnostics.ToEquatableArray());
    }

    public static Analysis<SerializableTypeModel> AnalyzeSerializable(INamedTypeSymbol type)
    {
        var diagnostics = new List<DiagnosticInfo>();
        if (!IsAccessible(type))
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.Inaccessible, type, type.ToDisplayString()));
            return new Analysis<SerializableTypeModel>(null, diagnostics.ToEquatableArray());
        }

        var members = new List<SerializableMemberModel>();
        var ids = new HashSet<uint>();
        var hasRequired = false;
        for (var current = type; current is not null && current.SpecialType != SpecialType.System_Object && current.SpecialType != SpecialType.System_ValueType; current = current.BaseType)
        {
            var idMembers = current.GetMembers().Where(m => !m.IsStatic && HasAttribute(m, Names.Id)).ToList();
            hasRequired |= current.GetMembers().Any(m => m is IPropertySymbol { IsRequired: true } or IFieldSymbol { IsRequired: true });
            if (idMembers.Count == 0)
            {
                continue;
            }

            if (!SymbolEqualityComparer.Default.Equals(current.ContainingAssembly, type.ContainingAssembly))
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.ForeignBase, type, type.Name, current.ToDisplayString()));
                break;
            }

            foreach (var member in idMembers)
            {
                var id = GetAttribute(member, Names.Id)!.ConstructorArguments.FirstOrDefault().Value is uint value ? value : 0;
                if (!ids.Add(id))
                {
                    diagnostics.Add(DiagnosticInfo.Create(Diagnostics.DuplicateId, member, current.Name, id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }

                switch (member)
                {
                    case IFieldSymbol field:
                        members.Add(new SerializableMemberModel(id, field.Name, Display(field.Type), IsKnownShallow(field.Type), MemberAccess.Field, Display(current)));
                        break;
                    case IPropertySymbol property:
                        var backing = current.GetMembers().OfType<IFieldSymbol>()
                            .FirstOrDefault(f => SymbolEqualityComparer.Default.Equals(f.AssociatedSymbol, property));
                        if (backing is not null)
                        {
                            members.Add(new SerializableMemberModel(id, backing.Name, Display(property.Type), IsKnownShallow(property.Type), MemberAccess.Field, Display(current)));
                        }
                        else if (property.GetMethod is not null && property.SetMethod is { IsInitOnly: false } setter
                            && setter.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal)
                        {
                            members.Add(new SerializableMemberModel(id, property.Name, Display(property.Type), IsKnownShallow(property.Type), MemberAccess.Property, Display(current)));
                        }
                        else
                        {
                            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.PropertyWithoutSetter, property, current.Name, property.Name));
                        }

                        break;
                }
            }
        }

        var parameterless = type.IsValueType
            || (!hasRequired && type.InstanceConstructors.Any(c => c.Parameters.Length == 0 && c.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal));
        var typeParameters = type.TypeParameters.Length == 0 ? "" : "<" + string.Join(", ", type.TypeParameters.Select(p => p.Name)) + ">";
        var constraints = string.Join(" ", type.TypeParameters.Select(Constraint).Where(c => c.Length > 0));
        string? openGeneric = null;
        if (type.IsGenericType)
        {
            var unbound = type.ConstructUnboundGenericType().ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
            openGeneric = unbound;
        }

        return new Analysis<SerializableTypeModel>(
            new SerializableTypeModel(
                Display(type),
                SafeName(type),
                type.IsValueType,
                type.IsAbstract,
                parameterless,
                typeParameters,
                constraints,
                openGeneric,
                members.ToEquatableArray()),
            diagnostics.ToEquatableArray());
    }

    private static string Constraint(ITypeParameterSymbol parameter)
    {
        var parts = new List<string>();
        if (parameter.HasReferenceTypeConstraint)
        {
            parts.Add("class");
        }

        if (parameter.HasUnmanagedTypeConstraint)
        {
            parts.Add("unmanaged");
        }
        else if (parameter.HasValueTypeConstraint)
        {
            parts.Add("struct");
        }

        if (parameter.HasNotNullConstraint)
        {
            parts.Add("notnull");
        }

        parts.AddRange(parameter.ConstraintTypes.Select(Display));
        if (parameter.HasConstructorConstraint && !parameter.HasValueTypeConstraint)
        {
            parts.Add("new()");
        }

        return parts.Count == 0 ? "" : "where " + parameter.Name + " : " + string.Join(", ", parts);
    }

    private static bool DerivesFrom(INamedTypeSymbol type, string baseName)
    {
        for (var current = type.BaseType; current is not null; current = current.BaseType)
        {
            if (MetadataName(current) == baseName)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsAccessible(INamedTypeSymbol type)
    {
        for (ISymbol? s = type; s is INamedTypeSymbol t; s = t.ContainingType)
        {
            if (t.DeclaredAccessibility is Accessibility.Private or Accessibility.Protected or Accessibility.ProtectedAndInternal)
            {
                return false;
            }
        }

        return true;
    }
}
