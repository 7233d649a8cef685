import { describe, expect, it } from 'vitest';
import { deletionWhere } from './delete-user.ts';

describe('deletionWhere', () => {
  it("reaches the details through the facts: one node's form by default", () => {
    expect(deletionWhere('u1', ['a1']).fact_activity_details).toBe(
      "activity_id IN (SELECT cityHash64(event_id) FROM fact_user_activity WHERE user_id = 'u1' OR actor_id IN ('u1', 'anon:a1') OR anonymous_id IN ('a1'))",
    );
  });

  it('a read over Distributed tables asks GLOBAL IN; a shard reads its own facts', () => {
    const read = deletionWhere('u1', [], { in: 'GLOBAL IN', table: 'fact_user_activity' });
    const shard = deletionWhere('u1', [], { in: 'IN', table: 'analytics.fact_user_activity_local' });
    expect(read.fact_activity_details).toBe(
      "activity_id GLOBAL IN (SELECT cityHash64(event_id) FROM fact_user_activity WHERE user_id = 'u1' OR actor_id IN ('u1'))",
    );
    expect(shard.fact_activity_details).toBe(
      "activity_id IN (SELECT cityHash64(event_id) FROM analytics.fact_user_activity_local WHERE user_id = 'u1' OR actor_id IN ('u1'))",
    );
    // The other tables' conditions name no table.
    expect({ ...read, fact_activity_details: '' }).toEqual({ ...shard, fact_activity_details: '' });
  });
});
