using System;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Orleans.LIFL.CodeGenerator;

/// <summary>A diagnostic in a form the incremental pipeline can compare and cache.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, string? FilePath, TextSpan Span, LinePositionSpan LineSpan, EquatableArray<StringItem> Arguments)
    : IEquatable<DiagnosticInfo>
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, ISymbol? symbol, params string[] arguments)
    {
        var location = symbol?.Locations.FirstOrDefault(l => l.IsInSource);
        return new DiagnosticInfo(
            descriptor,
            location?.SourceTree?.FilePath,
            location?.SourceSpan ?? default,
            location?.GetLineSpan().Span ?? default,
            arguments.Select(a => new StringItem(a)).ToEquatableArray());
    }

    public Diagnostic ToDiagnostic()
    {
        var location = FilePath is null ? Location.None : Location.Create(FilePath, Span, LineSpan);
        return Diagnostic.Create(Descriptor, location, Arguments.Select(a => (object)a.Value).ToArray());
    }

    public bool Equals(DiagnosticInfo? other) =>
        other is not null && Descriptor.Id == other.Descriptor.Id && FilePath == other.FilePath && Span == other.Span && Arguments.Equals(other.Arguments);

    public override int GetHashCode() => (Descriptor.Id, FilePath, Span).GetHashCode();
}

/// <summary>The outcome of looking at one declaration: a model to emit, diagnostics, or both.</summary>
internal sealed record Analysis<T>(T? Model, EquatableArray<DiagnosticInfo> Diagnostics) : IEquatable<Analysis<T>>
    where T : class, IEquatable<T>;
