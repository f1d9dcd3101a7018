/** A scan node of an `EXPLAIN (FORMAT JSON)` plan: which relation it reads, and through which index. */
export interface PlanScan {
  type: string;
  relation?: string;
  index?: string;
}

/** Every scan node of a JSON plan, depth first (the bench's claim check and the plan tests read it). */
export function collectScans(plan: unknown, out: PlanScan[] = []): PlanScan[] {
  if (Array.isArray(plan)) plan.forEach((p) => collectScans(p, out));
  else if (plan && typeof plan === 'object') {
    const node = plan as Record<string, unknown>;
    const type = node['Node Type'];
    if (typeof type === 'string' && type.includes('Scan')) {
      out.push({ type, relation: node['Relation Name'] as string | undefined, index: node['Index Name'] as string | undefined });
    }
    for (const value of Object.values(node)) if (typeof value === 'object') collectScans(value, out);
  }
  return out;
}
