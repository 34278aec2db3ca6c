namespace Orleans.LIFL.PostgreSql;

/// <summary>A PostgreSQL provider could not reach the database or a statement failed.</summary>
public sealed class PostgreSqlProviderException : LiflException
{
    public PostgreSqlProviderException(string message, string operation, string table, string? sqlState, Exception inner)
        : base(message, inner)
    {
        Operation = operation;
        Table = table;
        SqlState = sqlState;
    }

    /// <summary>What the provider was doing ("insert a membership row").</summary>
    public string Operation { get; }

    /// <summary>The table it was working on.</summary>
    public string Table { get; }

    /// <summary>PostgreSQL's error code (SQLSTATE) when the server reported the error; null for connection failures.</summary>
    public string? SqlState { get; }
}
