using Npgsql;
using NpgsqlTypes;

namespace Orleans.LIFL.PostgreSql;

/// <summary>Typed parameters, so every value reaches PostgreSQL as a parameter with a known type.</summary>
internal static class NpgsqlCommandExtensions
{
    public static NpgsqlCommand With<T>(this NpgsqlCommand command, string name, T value)
    {
        command.Parameters.Add(new NpgsqlParameter<T>(name, value));
        return command;
    }

    /// <summary>A text parameter that may be NULL.</summary>
    public static NpgsqlCommand WithNullableText(this NpgsqlCommand command, string name, string? value)
    {
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Text) { Value = value is null ? DBNull.Value : value });
        return command;
    }
}
