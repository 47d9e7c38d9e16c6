const response = await fetch('/api/v1/jobs/schedules', {
  method: 'POST',
  headers: {
    'Authorization': `Bearer ${token}`,
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    name: 'Hourly Price Update',
    templateId: 'price-update-template-id',
    cronExpression: '0 * * * *',
    timezone: 'UTC',
    isEnabled: true
  })
});
